#include "amqp/codec/frame_reader.h"

#include <cstring>
#include <string>

#include "amqp/codec/methods.h"
#include "base/buffer.h"

namespace warren::amqp {

ParseResult FrameReader::Next(std::span<const std::byte> in) const {
  if (in.size() < 7) return NeedMore{};
  const uint8_t type = std::to_integer<uint8_t>(in[0]);
  const uint16_t channel = LoadU16(in.data() + 1);
  const uint32_t size = LoadU32(in.data() + 3);
  if (type != kFrameMethodType && type != kFrameHeaderType && type != kFrameBodyType &&
      type != kFrameHeartbeatType) {
    return MakeClose(kFrameError, "unknown frame type " + std::to_string(type));
  }
  if (frame_max_ != 0 && size > frame_max_) {
    return MakeClose(kFrameError, "frame of " + std::to_string(size) +
                                      " bytes is larger than the negotiated maximum (" +
                                      std::to_string(frame_max_ - kFrameOverhead) + ")");
  }
  const size_t total = size_t{size} + kFrameOverhead;
  if (in.size() < total) return NeedMore{};
  if (std::to_integer<uint8_t>(in[total - 1]) != kFrameEndOctet) {
    return MakeClose(kFrameError, "bad frame-end octet " +
                                      std::to_string(std::to_integer<int>(in[total - 1])) +
                                      " (expected 206)");
  }
  return FrameParsed{Frame{type, channel, in.subspan(7, size)}, total};
}

HeaderCheck CheckProtocolHeader(std::span<const std::byte> in) {
  static constexpr char kLegacy[8] = {'A', 'M', 'Q', 'P', 1, 1, 0, 9};
  const size_t n = in.size() < 8 ? in.size() : 8;
  const bool prefix_ok =
      std::memcmp(in.data(), kProtocolHeader, n) == 0 || std::memcmp(in.data(), kLegacy, n) == 0;
  if (!prefix_ok) return HeaderCheck::kBad;
  return n < 8 ? HeaderCheck::kNeedMore : HeaderCheck::kOk;
}

}  // namespace warren::amqp
