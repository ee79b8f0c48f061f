#pragma once
// AMQP field tables and arrays as RabbitMQ's clients send them.
//
// The field type letters follow RabbitMQ's errata, not the 0-9-1 spec text:
//   t bool, b int8, B uint8, s int16, u uint16, I int32, i uint32, l int64, f float, d double,
//   D decimal, S long string, x byte array, A array, T timestamp, F table, V void.
// Each C++ alternative maps to exactly one letter, so decode -> encode is byte-identical,
// except that 'L' (sent by py-amqp) is read as a signed 64-bit 'l', as RabbitMQ does.
// Tables keep their wire order (a vector, not a map); lookups are linear, which is what small
// argument and header tables want.
//
// Value types; no thread affinity. Decoding lives in field_table_codec.h.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace warren::amqp {

struct Decimal {
  uint8_t scale = 0;
  int32_t value = 0;
  bool operator==(const Decimal&) const = default;
};

struct Timestamp {
  uint64_t seconds = 0;
  bool operator==(const Timestamp&) const = default;
};

// 'x': raw bytes, distinct from 'S' long strings.
struct ByteArray {
  std::string bytes;
  bool operator==(const ByteArray&) const = default;
};

struct Void {
  bool operator==(const Void&) const = default;
};

struct FieldValue;
struct FieldEntry;
using FieldArray = std::vector<FieldValue>;
using FieldTable = std::vector<FieldEntry>;

struct FieldValue {
  using Variant = std::variant<Void, bool, int8_t, uint8_t, int16_t, uint16_t, int32_t, uint32_t,
                               int64_t, float, double, Decimal, std::string, ByteArray, FieldArray,
                               Timestamp, FieldTable>;
  Variant v;

  FieldValue() = default;
  template <typename T>
  FieldValue(T&& x)  // NOLINT(google-explicit-constructor): values read like literals in tests.
      requires(!std::is_same_v<std::decay_t<T>, FieldValue>)
      : v(std::forward<T>(x)) {}
  FieldValue(const char* s);  // NOLINT(google-explicit-constructor)

  bool operator==(const FieldValue& o) const;
  template <typename T>
  const T* get_if() const {
    return std::get_if<T>(&v);
  }
  // Any integer type, widened; nullopt for non-integers (bool is not an integer).
  std::optional<int64_t> AsInt() const;
  // 'S' strings only.
  const std::string* AsString() const { return std::get_if<std::string>(&v); }
  // RabbitMQ's type name for error texts: "signedint", "longstr", "bool", ...
  std::string_view TypeName() const;
  // The wire type letter ('t', 'b', ..., 'V').
  char TypeLetter() const;
};

struct FieldEntry {
  std::string key;
  FieldValue value;
  bool operator==(const FieldEntry&) const = default;
};

// Defined here, not in the class: its body needs FieldEntry complete (clang checks eagerly).
inline FieldValue::FieldValue(const char* s) : v(std::string(s)) {}

// First entry with this key, or nullptr.
const FieldValue* Find(const FieldTable& table, std::string_view key);

}  // namespace warren::amqp
