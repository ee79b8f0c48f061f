#include "amqp/codec/field_table.h"

#include <gtest/gtest.h>

#include <string>

#include "amqp/codec/field_table_codec.h"
#include "amqp/codec/methods.h"

namespace warren::amqp {
namespace {

FieldTable EveryType() {
  return FieldTable{
      {"void", FieldValue(Void{})},
      {"bool", FieldValue(true)},
      {"i8", FieldValue(int8_t{-5})},
      {"u8", FieldValue(uint8_t{250})},
      {"i16", FieldValue(int16_t{-300})},
      {"u16", FieldValue(uint16_t{65000})},
      {"i32", FieldValue(int32_t{-70000})},
      {"u32", FieldValue(uint32_t{4000000000u})},
      {"i64", FieldValue(int64_t{-(int64_t{1} << 40)})},
      {"f", FieldValue(1.5f)},
      {"d", FieldValue(2.25)},
      {"dec", FieldValue(Decimal{2, -12345})},
      {"str", FieldValue(std::string("hello"))},
      {"bin", FieldValue(ByteArray{std::string("\0\1\2", 3)})},
      {"arr", FieldValue(FieldArray{FieldValue(int32_t{1}), FieldValue(std::string("x"))})},
      {"ts", FieldValue(Timestamp{1700000000})},
      {"tbl", FieldValue(FieldTable{{"inner", FieldValue(false)}})},
  };
}

TEST(FieldTable, EveryTypeRoundTrips) {
  FieldTable t = EveryType();
  ByteBuffer out;
  EncodeFieldTable(t, out);
  auto back = DecodeFieldTable(out.span());
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back.value(), t);
  // Re-encoding is byte-identical.
  ByteBuffer again;
  EncodeFieldTable(back.value(), again);
  EXPECT_EQ(std::vector<std::byte>(out.span().begin(), out.span().end()),
            std::vector<std::byte>(again.span().begin(), again.span().end()));
}

TEST(FieldTable, TypeLettersAndNamesAreRabbitMqs) {
  const std::string letters = "VtbBsuIilfdDSxATF";
  const char* names[] = {"void",          "bool",      "byte",        "unsignedbyte", "short",
                         "unsignedshort", "signedint", "unsignedint", "long",         "float",
                         "double",        "decimal",   "longstr",     "binary",       "array",
                         "timestamp",     "table"};
  FieldTable t = EveryType();
  ASSERT_EQ(t.size(), letters.size());
  for (size_t i = 0; i < t.size(); ++i) {
    EXPECT_EQ(t[i].value.TypeLetter(), letters[i]) << t[i].key;
    EXPECT_EQ(t[i].value.TypeName(), names[i]) << t[i].key;
  }
}

TEST(FieldTable, EveryTruncationIsAnError) {
  ByteBuffer out;
  EncodeFieldTable(EveryType(), out);
  for (size_t n = 0; n < out.size(); ++n) {
    auto r = DecodeFieldTable(out.span().first(n));
    ASSERT_FALSE(r.has_value()) << n;
    EXPECT_EQ(r.error().reply_code, 502);
  }
}

TEST(FieldTable, LengthLongerThanInputIsAnError) {
  ByteBuffer out;
  out.PutU32(0xFFFFFFF0u);
  out.PutU8(1);
  out.PutU8('k');
  EXPECT_FALSE(DecodeFieldTable(out.span()).has_value());
}

TEST(FieldTable, UnknownTypeLetterIsAnError) {
  ByteBuffer out;
  out.PutU32(3);
  out.PutU8(1);
  out.PutU8('k');
  out.PutU8('Z');
  EXPECT_FALSE(DecodeFieldTable(out.span()).has_value());
}

TEST(FieldTable, NestingIsBounded) {
  FieldTable t;
  for (int i = 0; i < 70; ++i) t = FieldTable{{"n", FieldValue(std::move(t))}};
  ByteBuffer out;
  EncodeFieldTable(t, out);
  EXPECT_FALSE(DecodeFieldTable(out.span()).has_value());
  FieldTable shallow;
  for (int i = 0; i < 10; ++i) shallow = FieldTable{{"n", FieldValue(std::move(shallow))}};
  ByteBuffer ok;
  EncodeFieldTable(shallow, ok);
  EXPECT_TRUE(DecodeFieldTable(ok.span()).has_value());
}

TEST(FieldValue, AsIntWidensIntegersOnly) {
  EXPECT_EQ(FieldValue(int8_t{-3}).AsInt(), -3);
  EXPECT_EQ(FieldValue(uint32_t{7}).AsInt(), 7);
  EXPECT_EQ(FieldValue(int64_t{1} << 50).AsInt(), int64_t{1} << 50);
  EXPECT_EQ(FieldValue(true).AsInt(), std::nullopt);
  EXPECT_EQ(FieldValue(1.0).AsInt(), std::nullopt);
  EXPECT_EQ(FieldValue("s").AsInt(), std::nullopt);
  FieldTable t{{"a", FieldValue(1)}, {"b", FieldValue("x")}};
  EXPECT_EQ(*Find(t, "b")->AsString(), "x");
  EXPECT_EQ(Find(t, "c"), nullptr);
}

}  // namespace
}  // namespace warren::amqp
