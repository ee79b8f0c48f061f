#include "base/strong_id.h"

#include <gtest/gtest.h>

#include <type_traits>
#include <unordered_set>

namespace warren {
namespace {

TEST(StrongId, DistinctTypesCompareAndHash) {
  static_assert(!std::is_convertible_v<ChannelId, DeliveryTag>);
  static_assert(!std::is_convertible_v<uint16_t, ChannelId>);
  ChannelId a(1), b(2);
  EXPECT_LT(a, b);
  EXPECT_EQ(a, ChannelId(1));
  std::unordered_set<DeliveryTag> tags{DeliveryTag(7)};
  EXPECT_TRUE(tags.contains(DeliveryTag(7)));
  EXPECT_FALSE(tags.contains(DeliveryTag(8)));
}

}  // namespace
}  // namespace warren
