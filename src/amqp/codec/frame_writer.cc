#include "amqp/codec/frame_writer.h"

#include "amqp/codec/wire.h"

namespace warren::amqp {

void WriteContentHeader(ByteBuffer& out, uint16_t channel, uint16_t class_id, uint64_t body_size,
                        std::span<const std::byte> raw_properties) {
  const size_t at = BeginFrame(out, kFrameHeaderType, channel);
  out.PutU16(class_id);
  out.PutU16(0);  // weight
  out.PutU64(body_size);
  out.PutBytes(raw_properties);
  EndFrame(out, at);
}

void WriteBody(ByteBuffer& out, uint16_t channel, std::span<const std::byte> body,
               uint32_t frame_max) {
  const size_t chunk = frame_max > kFrameOverhead ? frame_max - kFrameOverhead : body.size();
  for (size_t off = 0; off < body.size(); off += chunk) {
    const size_t n = std::min(chunk, body.size() - off);
    const size_t at = BeginFrame(out, kFrameBodyType, channel);
    out.PutBytes(body.subspan(off, n));
    EndFrame(out, at);
  }
}

void WriteDeliver(ByteBuffer& out, uint16_t channel, std::string_view consumer_tag,
                  uint64_t delivery_tag, bool redelivered, std::string_view exchange,
                  std::string_view routing_key, std::span<const std::byte> raw_properties,
                  std::span<const std::byte> body, uint32_t frame_max) {
  const size_t at = BeginFrame(out, kFrameMethodType, channel);
  out.PutU16(BasicDeliver::kClassId);
  out.PutU16(BasicDeliver::kMethodId);
  PutShortStr(out, consumer_tag);
  out.PutU64(delivery_tag);
  out.PutU8(redelivered ? 1 : 0);
  PutShortStr(out, exchange);
  PutShortStr(out, routing_key);
  EndFrame(out, at);
  WriteContentHeader(out, channel, BasicDeliver::kClassId, body.size(), raw_properties);
  WriteBody(out, channel, body, frame_max);
}

void WriteHeartbeat(ByteBuffer& out) {
  out.PutU8(kFrameHeartbeatType);
  out.PutU16(0);
  out.PutU32(0);
  out.PutU8(kFrameEndOctet);
}

DecodeResult<ContentHeader> DecodeContentHeader(std::span<const std::byte> payload) {
  WireReader r(payload);
  ContentHeader h;
  h.class_id = r.U16();
  h.weight = r.U16();
  h.body_size = r.U64();
  if (!r.ok()) return MakeClose(kFrameError, "content header frame too short");
  h.raw_properties = payload.subspan(12);
  if (h.class_id == 60) {
    auto props = DecodeProperties(h.raw_properties);
    if (!props) return props.error();
    h.properties = std::move(props).value();
  }
  return h;
}

}  // namespace warren::amqp
