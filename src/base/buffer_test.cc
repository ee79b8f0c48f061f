#include "base/buffer.h"

#include <gtest/gtest.h>

namespace warren {
namespace {

TEST(ByteBuffer, BigEndianRoundTrip) {
  ByteBuffer b;
  b.PutU8(0xAB);
  b.PutU16(0x1234);
  b.PutU32(0xDEADBEEF);
  b.PutU64(0x0102030405060708ULL);
  ASSERT_EQ(b.size(), 15u);
  EXPECT_EQ(std::to_integer<int>(b.data()[0]), 0xAB);
  EXPECT_EQ(LoadU16(b.data() + 1), 0x1234);
  EXPECT_EQ(LoadU32(b.data() + 3), 0xDEADBEEFu);
  EXPECT_EQ(LoadU64(b.data() + 7), 0x0102030405060708ULL);
}

TEST(ByteBuffer, PatchLengthAndConsume) {
  ByteBuffer b;
  b.PutU32(0);
  b.PutString("hello");
  b.SetU32At(0, 5);
  EXPECT_EQ(LoadU32(b.data()), 5u);
  b.Consume(4);
  ASSERT_EQ(b.size(), 5u);
  EXPECT_EQ(static_cast<char>(b.data()[0]), 'h');
  b.Clear();
  EXPECT_TRUE(b.empty());
}

}  // namespace
}  // namespace warren
