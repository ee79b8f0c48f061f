// Decodes arbitrary bytes as a field table; whatever decodes must re-encode and decode to the
// same value.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "amqp/codec/field_table_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace warren::amqp;
  std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
  auto t = DecodeFieldTable(in);
  if (t) {
    warren::ByteBuffer out;
    EncodeFieldTable(t.value(), out);
    auto again = DecodeFieldTable(out.span());
    if (!again) __builtin_trap();
    // NaN payloads compare unequal to themselves; compare the bytes instead.
    warren::ByteBuffer out2;
    EncodeFieldTable(again.value(), out2);
    if (out.size() != out2.size() || std::memcmp(out.data(), out2.data(), out.size()) != 0) {
      __builtin_trap();
    }
  }
  return 0;
}
