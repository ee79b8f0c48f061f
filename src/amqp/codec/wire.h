#pragma once
// Bounds-checked primitive readers and writers shared by the generated method codec, the
// field-table codec and the content-header codec. Internal to the codec.
//
// WireReader never reads outside its span: after the first short read it is !ok() and every
// further read returns zero/empty, so decoders check ok() once at the end.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "amqp/codec/close.h"
#include "amqp/codec/field_table.h"
#include "amqp/codec/field_table_codec.h"
#include "base/buffer.h"

namespace warren::amqp {

// Nested tables/arrays deeper than this are refused (502 SYNTAX_ERROR).
inline constexpr int kMaxFieldDepth = 64;

// Strict UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF).
inline bool ValidUtf8(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (n - i < len) return false;
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

class WireReader {
 public:
  explicit WireReader(std::span<const std::byte> data) : data_(data) {}

  bool ok() const { return ok_; }
  bool AtEnd() const { return pos_ == data_.size(); }
  // A ShortStrUtf8() read bytes that are not valid UTF-8 (the read itself succeeded).
  bool bad_utf8() const { return bad_utf8_; }
  size_t remaining() const { return data_.size() - pos_; }

  uint8_t U8() {
    if (!Need(1)) return 0;
    return std::to_integer<uint8_t>(data_[pos_++]);
  }
  uint16_t U16() {
    if (!Need(2)) return 0;
    uint16_t v = LoadU16(data_.data() + pos_);
    pos_ += 2;
    return v;
  }
  uint32_t U32() {
    if (!Need(4)) return 0;
    uint32_t v = LoadU32(data_.data() + pos_);
    pos_ += 4;
    return v;
  }
  uint64_t U64() {
    if (!Need(8)) return 0;
    uint64_t v = LoadU64(data_.data() + pos_);
    pos_ += 8;
    return v;
  }
  std::span<const std::byte> Bytes(size_t n) {
    if (!Need(n)) return {};
    auto s = data_.subspan(pos_, n);
    pos_ += n;
    return s;
  }
  std::string ShortStr() {
    auto s = Bytes(U8());
    return std::string(reinterpret_cast<const char*>(s.data()), s.size());
  }
  std::string ShortStrUtf8() {
    std::string s = ShortStr();
    if (!ValidUtf8(s)) bad_utf8_ = true;
    return s;
  }
  std::string LongStr() {
    auto s = Bytes(U32());
    return std::string(reinterpret_cast<const char*>(s.data()), s.size());
  }
  FieldTable Table(int depth = 0);
  FieldArray Array(int depth);
  FieldValue Value(int depth);

  void Fail() { ok_ = false; }
  Close SyntaxError(uint16_t class_id, uint16_t method_id) const;

 private:
  bool Need(size_t n) {
    if (!ok_ || data_.size() - pos_ < n) {
      ok_ = false;
      return false;
    }
    return true;
  }

  std::span<const std::byte> data_;
  size_t pos_ = 0;
  bool ok_ = true;
  bool bad_utf8_ = false;
};

// Short strings are at most 255 bytes on the wire; longer input is truncated.
inline void PutShortStr(ByteBuffer& out, std::string_view s) {
  const size_t n = s.size() > 255 ? 255 : s.size();
  out.PutU8(static_cast<uint8_t>(n));
  out.PutBytes(s.data(), n);
}
inline void PutLongStr(ByteBuffer& out, std::string_view s) {
  out.PutU32(static_cast<uint32_t>(s.size()));
  out.PutString(s);
}

Close UnknownMethod(uint16_t class_id, uint16_t method_id);

}  // namespace warren::amqp
