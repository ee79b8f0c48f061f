#include "amqp/session/tag_log.h"

#include <gtest/gtest.h>

#include <vector>

namespace warren::amqp {
namespace {

std::vector<uint64_t> Tags(const TagLog<int>& log, uint64_t up_to = 0) {
  std::vector<uint64_t> out;
  log.ForEachTag(up_to, [&](uint64_t t) { out.push_back(t); });
  return out;
}

TEST(TagLog, InOrderPutsAndOutOfOrderTakes) {
  TagLog<int> log;
  for (uint64_t t = 1; t <= 5; ++t) log.Put(t, static_cast<int>(t * 10));
  EXPECT_EQ(log.size(), 5u);
  EXPECT_EQ(log.Take(3), 30);
  EXPECT_FALSE(log.Contains(3));
  EXPECT_EQ(log.Take(3), std::nullopt) << "a tag settles once";
  EXPECT_EQ(Tags(log), (std::vector<uint64_t>{1, 2, 4, 5}));
  EXPECT_EQ(Tags(log, 4), (std::vector<uint64_t>{1, 2, 4}));
  EXPECT_EQ(log.Take(1), 10);
  EXPECT_EQ(log.Take(2), 20);
  EXPECT_EQ(*log.Find(4), 40);
  EXPECT_EQ(log.size(), 2u);
}

TEST(TagLog, GapsFromUnstoredTags) {
  TagLog<int> log;
  log.Put(2, 2);
  log.Put(7, 7);  // 3..6 were no-ack deliveries
  EXPECT_EQ(Tags(log), (std::vector<uint64_t>{2, 7}));
  EXPECT_FALSE(log.Contains(5));
  EXPECT_FALSE(log.Contains(1));
  EXPECT_FALSE(log.Contains(100));
  EXPECT_EQ(log.Take(2), 2);
  EXPECT_EQ(Tags(log), (std::vector<uint64_t>{7}));
  EXPECT_EQ(log.Take(7), 7);
  EXPECT_TRUE(log.empty());
  log.Put(9, 9);
  EXPECT_EQ(Tags(log), (std::vector<uint64_t>{9}));
}

// consumer_timeout looks only at the oldest outstanding delivery.
TEST(TagLog, OldestIsTheSmallestOutstandingTag) {
  TagLog<int> log;
  EXPECT_EQ(log.Oldest(), nullptr);
  log.Put(1, 10);
  log.Put(2, 20);
  log.Put(4, 40);
  EXPECT_EQ(*log.Oldest(), 10);
  EXPECT_EQ(log.Take(2), 20);
  EXPECT_EQ(*log.Oldest(), 10);
  EXPECT_EQ(log.Take(1), 10);
  EXPECT_EQ(*log.Oldest(), 40);
  EXPECT_EQ(log.Take(4), 40);
  EXPECT_EQ(log.Oldest(), nullptr);
}

}  // namespace
}  // namespace warren::amqp
