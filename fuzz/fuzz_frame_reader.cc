// Feeds arbitrary bytes to the frame reader as a connection would: protocol header check,
// then every frame, decoding methods, content headers and properties found in them.
#include <cstddef>
#include <cstdint>
#include <span>

#include "amqp/codec/frame_reader.h"
#include "amqp/codec/frame_writer.h"
#include "amqp/codec/methods.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace warren::amqp;
  std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
  if (!in.empty() && CheckProtocolHeader(in) == HeaderCheck::kOk) in = in.subspan(8);
  FrameReader reader(size % 2 ? 4096 : 131072);
  while (!in.empty()) {
    auto r = reader.Next(in);
    auto* parsed = std::get_if<FrameParsed>(&r);
    if (parsed == nullptr) break;
    const Frame& f = parsed->frame;
    if (f.type == kFrameMethodType) {
      auto m = DecodeMethod(f.payload);
      if (m) {
        warren::ByteBuffer out;
        EncodeMethod(m.value(), out);
        auto again = DecodeMethod(out.span());
        if (!again || !(again.value() == m.value())) __builtin_trap();
      }
    } else if (f.type == kFrameHeaderType) {
      auto h = DecodeContentHeader(f.payload);
      if (h) {
        auto p = DecodeProperties(h.value().raw_properties);
        if (p) {
          warren::ByteBuffer out;
          EncodeProperties(p.value(), out);
          auto again = DecodeProperties(out.span());
          if (!again || !(again.value() == p.value())) __builtin_trap();
        }
      }
    }
    in = in.subspan(parsed->consumed);
  }
  return 0;
}
