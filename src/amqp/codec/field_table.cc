#include "amqp/codec/field_table.h"

#include <bit>
#include <cstring>

#include "amqp/codec/field_table_codec.h"
#include "amqp/codec/methods.h"
#include "amqp/codec/wire.h"

namespace warren::amqp {

namespace {
// Indexed like FieldValue::Variant.
constexpr char kLetters[] = {'V', 't', 'b', 'B', 's', 'u', 'I', 'i', 'l',
                             'f', 'd', 'D', 'S', 'x', 'A', 'T', 'F'};
constexpr std::string_view kTypeNames[] = {
    "void",      "bool",        "byte",  "unsignedbyte", "short",  "unsignedshort",
    "signedint", "unsignedint", "long",  "float",        "double", "decimal",
    "longstr",   "binary",      "array", "timestamp",    "table"};
static_assert(std::size(kLetters) == std::variant_size_v<FieldValue::Variant>);
static_assert(std::size(kTypeNames) == std::variant_size_v<FieldValue::Variant>);
}  // namespace

bool FieldValue::operator==(const FieldValue& o) const { return v == o.v; }

std::optional<int64_t> FieldValue::AsInt() const {
  return std::visit(
      [](const auto& x) -> std::optional<int64_t> {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
          if constexpr (std::is_same_v<T, uint64_t>) {
            return static_cast<int64_t>(x);
          } else {
            return static_cast<int64_t>(x);
          }
        } else {
          return std::nullopt;
        }
      },
      v);
}

std::string_view FieldValue::TypeName() const { return kTypeNames[v.index()]; }
char FieldValue::TypeLetter() const { return kLetters[v.index()]; }

const FieldValue* Find(const FieldTable& table, std::string_view key) {
  for (const auto& e : table) {
    if (e.key == key) return &e.value;
  }
  return nullptr;
}

Close WireReader::SyntaxError(uint16_t class_id, uint16_t method_id) const {
  if (class_id == 0) return MakeClose(kSyntaxError, "malformed frame payload");
  const MethodInfo* info = FindMethodInfo(class_id, method_id);
  if (info == nullptr) {
    return MakeClose(kSyntaxError, "cannot decode content header properties", class_id, method_id);
  }
  // RabbitMQ 3.10 (rabbit_binary_parser): 501 FRAME_ERROR on the connection, naming the
  // method's argument bytes as Erlang prints a binary; MakeClose caps the text at 255 bytes.
  std::string what = "cannot decode <<";
  const auto args = data_.size() > 4 ? data_.subspan(4) : std::span<const std::byte>();
  for (size_t i = 0; i < args.size() && what.size() < 260; ++i) {
    if (i != 0) what += ',';
    what += std::to_string(std::to_integer<int>(args[i]));
  }
  what += ">>";
  return MakeClose(kFrameError, what, class_id, method_id);
}

Close UnknownMethod(uint16_t class_id, uint16_t method_id) {
  return MakeClose(kNotImplemented,
                   "unknown method class_id=" + std::to_string(class_id) +
                       " method_id=" + std::to_string(method_id),
                   class_id, method_id);
}

FieldValue WireReader::Value(int depth) {
  const char letter = static_cast<char>(U8());
  if (!ok()) return {};
  switch (letter) {
    case 't':
      return FieldValue(U8() != 0);
    case 'b':
      return FieldValue(static_cast<int8_t>(U8()));
    case 'B':
      return FieldValue(U8());
    case 's':
      return FieldValue(static_cast<int16_t>(U16()));
    case 'u':
      return FieldValue(U16());
    case 'I':
      return FieldValue(static_cast<int32_t>(U32()));
    case 'i':
      return FieldValue(U32());
    case 'l':
    case 'L':  // py-amqp sends 'L'; RabbitMQ reads both as signed 64-bit and writes 'l'.
      return FieldValue(static_cast<int64_t>(U64()));
    case 'f':
      return FieldValue(std::bit_cast<float>(U32()));
    case 'd':
      return FieldValue(std::bit_cast<double>(U64()));
    case 'D': {
      Decimal d;
      d.scale = U8();
      d.value = static_cast<int32_t>(U32());
      return FieldValue(d);
    }
    case 'S':
      return FieldValue(LongStr());
    case 'x':
      return FieldValue(ByteArray{LongStr()});
    case 'A':
      return FieldValue(Array(depth + 1));
    case 'T':
      return FieldValue(Timestamp{U64()});
    case 'F':
      return FieldValue(Table(depth + 1));
    case 'V':
      return FieldValue(Void{});
    default:
      Fail();
      return {};
  }
}

FieldTable WireReader::Table(int depth) {
  FieldTable table;
  const uint32_t len = U32();
  if (depth > kMaxFieldDepth) Fail();
  auto body = Bytes(len);
  if (!ok()) return table;
  WireReader r(body);
  while (r.ok() && !r.AtEnd()) {
    FieldEntry e;
    e.key = r.ShortStr();
    e.value = r.Value(depth);
    if (r.ok()) table.push_back(std::move(e));
  }
  if (!r.ok()) Fail();
  return table;
}

FieldArray WireReader::Array(int depth) {
  FieldArray array;
  const uint32_t len = U32();
  if (depth > kMaxFieldDepth) Fail();
  auto body = Bytes(len);
  if (!ok()) return array;
  WireReader r(body);
  while (r.ok() && !r.AtEnd()) {
    FieldValue v = r.Value(depth);
    if (r.ok()) array.push_back(std::move(v));
  }
  if (!r.ok()) Fail();
  return array;
}

DecodeResult<FieldTable> DecodeFieldTable(std::span<const std::byte> data) {
  WireReader r(data);
  FieldTable t = r.Table();
  if (!r.ok() || !r.AtEnd()) return MakeClose(kSyntaxError, "malformed field table");
  return t;
}

void EncodeFieldValue(const FieldValue& value, ByteBuffer& out) {
  out.PutU8(static_cast<uint8_t>(value.TypeLetter()));
  std::visit(
      [&out](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, Void>) {
        } else if constexpr (std::is_same_v<T, bool>) {
          out.PutU8(x ? 1 : 0);
        } else if constexpr (std::is_same_v<T, int8_t> || std::is_same_v<T, uint8_t>) {
          out.PutU8(static_cast<uint8_t>(x));
        } else if constexpr (std::is_same_v<T, int16_t> || std::is_same_v<T, uint16_t>) {
          out.PutU16(static_cast<uint16_t>(x));
        } else if constexpr (std::is_same_v<T, int32_t> || std::is_same_v<T, uint32_t>) {
          out.PutU32(static_cast<uint32_t>(x));
        } else if constexpr (std::is_same_v<T, int64_t>) {
          out.PutU64(static_cast<uint64_t>(x));
        } else if constexpr (std::is_same_v<T, float>) {
          out.PutU32(std::bit_cast<uint32_t>(x));
        } else if constexpr (std::is_same_v<T, double>) {
          out.PutU64(std::bit_cast<uint64_t>(x));
        } else if constexpr (std::is_same_v<T, Decimal>) {
          out.PutU8(x.scale);
          out.PutU32(static_cast<uint32_t>(x.value));
        } else if constexpr (std::is_same_v<T, std::string>) {
          PutLongStr(out, x);
        } else if constexpr (std::is_same_v<T, ByteArray>) {
          PutLongStr(out, x.bytes);
        } else if constexpr (std::is_same_v<T, FieldArray>) {
          const size_t at = out.size();
          out.PutU32(0);
          for (const auto& e : x) EncodeFieldValue(e, out);
          out.SetU32At(at, static_cast<uint32_t>(out.size() - at - 4));
        } else if constexpr (std::is_same_v<T, Timestamp>) {
          out.PutU64(x.seconds);
        } else if constexpr (std::is_same_v<T, FieldTable>) {
          EncodeFieldTable(x, out);
        }
      },
      value.v);
}

void EncodeFieldTable(const FieldTable& table, ByteBuffer& out) {
  const size_t at = out.size();
  out.PutU32(0);
  for (const auto& e : table) {
    PutShortStr(out, e.key);
    EncodeFieldValue(e.value, out);
  }
  out.SetU32At(at, static_cast<uint32_t>(out.size() - at - 4));
}

}  // namespace warren::amqp
