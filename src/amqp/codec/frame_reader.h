#pragma once
// Incremental, zero-copy AMQP 0-9-1 frame reader (sans-I/O).
//
// The caller keeps a buffer of received bytes and calls Next() on its unconsumed tail until it
// answers NeedMore; bytes may arrive split anywhere. A returned Frame's payload points into the
// caller's buffer, valid until the caller moves or drops those bytes.
//
// Limits (RabbitMQ's rule, rabbit_reader): a frame whose payload is larger than frame_max is
// refused with 501 FRAME_ERROR (frame_max - 8 plus RabbitMQ's 8-byte tolerance); this applies
// to every frame type. A missing 0xCE frame-end or an unknown frame type is also 501.
// Never throws, never reads out of bounds.

#include <cstddef>
#include <cstdint>
#include <span>
#include <variant>

#include "amqp/codec/close.h"

namespace warren::amqp {

inline constexpr uint8_t kFrameMethodType = 1;
inline constexpr uint8_t kFrameHeaderType = 2;
inline constexpr uint8_t kFrameBodyType = 3;
inline constexpr uint8_t kFrameHeartbeatType = 8;
inline constexpr uint8_t kFrameEndOctet = 0xCE;
inline constexpr size_t kFrameOverhead = 8;  // 7-byte header + frame-end

struct Frame {
  uint8_t type = 0;
  uint16_t channel = 0;
  std::span<const std::byte> payload;
};

struct NeedMore {};
struct FrameParsed {
  Frame frame;
  size_t consumed = 0;  // header + payload + frame-end
};
using ParseResult = std::variant<NeedMore, FrameParsed, Close>;

class FrameReader {
 public:
  explicit FrameReader(uint32_t frame_max) : frame_max_(frame_max) {}
  void set_frame_max(uint32_t frame_max) { frame_max_ = frame_max; }
  uint32_t frame_max() const { return frame_max_; }

  // Parses the first frame of `in`.
  ParseResult Next(std::span<const std::byte> in) const;

 private:
  uint32_t frame_max_;
};

// The 8-byte protocol header a client sends first.
enum class HeaderCheck {
  kNeedMore,  // fewer than 8 bytes so far
  kOk,        // AMQP 0-9-1 ("AMQP\0\0\9\1", or "AMQP\1\1\0\9" which RabbitMQ accepts as 0-9-1)
  kBad,       // anything else: answer kProtocolHeader and close
};
HeaderCheck CheckProtocolHeader(std::span<const std::byte> in);
inline constexpr char kProtocolHeader[8] = {'A', 'M', 'Q', 'P', 0, 0, 9, 1};

}  // namespace warren::amqp
