#include "broker/ready_list.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace warren::broker {
namespace {

struct E {
  uint64_t seq = 0;
  uint8_t priority = 0;
};

std::vector<uint64_t> Drain(ReadyList<E>& l) {
  std::vector<uint64_t> out;
  while (!l.empty()) out.push_back(l.PopFront().seq);
  return out;
}

TEST(ReadyList, PlainIsFifo) {
  ReadyList<E> l;
  for (uint64_t s = 1; s <= 4; ++s) l.PushBack(E{s, 0});
  EXPECT_EQ(l.size(), 4u);
  EXPECT_EQ(Drain(l), (std::vector<uint64_t>{1, 2, 3, 4}));
}

TEST(ReadyList, HighestPriorityFirstThenArrival) {
  ReadyList<E> l(5);
  l.PushBack(E{1, 1});
  l.PushBack(E{2, 0});
  l.PushBack(E{3, 5});
  l.PushBack(E{4, 1});
  l.PushBack(E{5, 5});
  l.PushBack(E{6, 3});
  EXPECT_EQ(l.Front().seq, 3u);
  EXPECT_EQ(Drain(l), (std::vector<uint64_t>{3, 5, 6, 1, 4, 2}));
}

TEST(ReadyList, RequeueGoesBackToItsPlace) {
  ReadyList<E> l(2);
  for (uint64_t s = 1; s <= 4; ++s) l.PushBack(E{s, static_cast<uint8_t>(s % 2 + 1)});
  // order: 1(2) 3(2) 2(1) 4(1)
  E first = l.PopFront();
  E second = l.PopFront();
  EXPECT_EQ(first.seq, 1u);
  EXPECT_EQ(second.seq, 3u);
  l.InsertBySeq(std::move(second));
  l.InsertBySeq(std::move(first));
  EXPECT_EQ(Drain(l), (std::vector<uint64_t>{1, 3, 2, 4}));
}

TEST(ReadyList, TakeRemovesFromTheMiddle) {
  ReadyList<E> l(1);
  for (uint64_t s = 1; s <= 5; ++s) l.PushBack(E{s, static_cast<uint8_t>(s == 3)});
  auto t = l.Take(4, 0);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->seq, 4u);
  EXPECT_FALSE(l.Take(4, 0));
  EXPECT_FALSE(l.Take(3, 0));  // wrong level
  EXPECT_FALSE(l.Take(9, 7));  // above max priority
  EXPECT_TRUE(l.Take(3, 1));
  EXPECT_EQ(Drain(l), (std::vector<uint64_t>{1, 2, 5}));
}

TEST(ReadyList, ClearEmptiesEveryLevel) {
  ReadyList<E> l(3);
  l.PushBack(E{1, 3});
  l.PushBack(E{2, 0});
  l.Clear();
  EXPECT_TRUE(l.empty());
  l.PushBack(E{3, 0});
  EXPECT_EQ(Drain(l), (std::vector<uint64_t>{3}));
}

}  // namespace
}  // namespace warren::broker
