#pragma once
// Appends complete frames to a reusable ByteBuffer. Deliveries write the stored content-header
// property bytes unchanged (no re-encoding); bodies are split into frame_max - 8 byte frames and
// an empty body produces no body frame (RabbitMQ errata §11).

#include <cstdint>
#include <span>
#include <string_view>

#include "amqp/codec/frame_reader.h"
#include "amqp/codec/methods.h"
#include "base/buffer.h"

namespace warren::amqp {

// Starts a frame: writes type, channel and a size placeholder; returns the size's position.
inline size_t BeginFrame(ByteBuffer& out, uint8_t type, uint16_t channel) {
  out.PutU8(type);
  out.PutU16(channel);
  const size_t at = out.size();
  out.PutU32(0);
  return at;
}
// Patches the size written by BeginFrame and appends the frame-end octet.
inline void EndFrame(ByteBuffer& out, size_t size_at) {
  out.SetU32At(size_at, static_cast<uint32_t>(out.size() - size_at - 4));
  out.PutU8(kFrameEndOctet);
}

template <typename M>
void WriteMethod(ByteBuffer& out, uint16_t channel, const M& m) {
  const size_t at = BeginFrame(out, kFrameMethodType, channel);
  EncodeMethod(m, out);
  EndFrame(out, at);
}

// raw_properties: property flags + property list exactly as they go on the wire.
void WriteContentHeader(ByteBuffer& out, uint16_t channel, uint16_t class_id, uint64_t body_size,
                        std::span<const std::byte> raw_properties);
void WriteBody(ByteBuffer& out, uint16_t channel, std::span<const std::byte> body,
               uint32_t frame_max);
void WriteHeartbeat(ByteBuffer& out);

// Method + content header + body frames.
template <typename M>
void WriteContent(ByteBuffer& out, uint16_t channel, const M& m,
                  std::span<const std::byte> raw_properties, std::span<const std::byte> body,
                  uint32_t frame_max) {
  WriteMethod(out, channel, m);
  WriteContentHeader(out, channel, M::kClassId, body.size(), raw_properties);
  WriteBody(out, channel, body, frame_max);
}

// basic.deliver, content header and body frames, as WriteContent(BasicDeliver{...}) writes them
// but without building the method struct (no string copies on the delivery path).
void WriteDeliver(ByteBuffer& out, uint16_t channel, std::string_view consumer_tag,
                  uint64_t delivery_tag, bool redelivered, std::string_view exchange,
                  std::string_view routing_key, std::span<const std::byte> raw_properties,
                  std::span<const std::byte> body, uint32_t frame_max);

// The content-header frame payload, decoded. raw_properties points into the input.
struct ContentHeader {
  uint16_t class_id = 0;
  uint16_t weight = 0;
  uint64_t body_size = 0;
  std::span<const std::byte> raw_properties;
  BasicProperties properties;  // decoded from raw_properties when class_id is 60 (basic)
};
// Checks the fixed part and decodes the properties (502 SYNTAX_ERROR if they do not decode).
DecodeResult<ContentHeader> DecodeContentHeader(std::span<const std::byte> payload);

}  // namespace warren::amqp
