#include "broker/consumer_set.h"

#include <gtest/gtest.h>

#include "broker/broker.h"

namespace warren::broker {
namespace {

struct FakeConsumer : Consumer {
  bool credit = true;
  bool CanAccept() const override { return credit; }
  void Deliver(const std::shared_ptr<Queue>&, QueueEntry) override {}
  void OnQueueDeleted() override {}
};

TEST(ConsumerSet, EqualPrioritiesRoundRobinSkippingBlockedOnes) {
  ConsumerSet s;
  FakeConsumer a, b, c;
  s.Add(&a, 0, false);
  s.Add(&b, 0, false);
  s.Add(&c, 0, false);
  EXPECT_EQ(s.Next(), &a);
  EXPECT_EQ(s.Next(), &b);
  b.credit = false;
  EXPECT_EQ(s.Next(), &c);
  EXPECT_EQ(s.Next(), &a);
  EXPECT_EQ(s.Next(), &c);
  a.credit = c.credit = false;
  EXPECT_EQ(s.Next(), nullptr);
}

TEST(ConsumerSet, HigherPriorityFirstLowerOnlyWhenHigherAreBlocked) {
  ConsumerSet s;
  FakeConsumer low, high1, high2, mid;
  s.Add(&low, -3, false);
  s.Add(&high1, 10, false);
  s.Add(&mid, 5, false);
  s.Add(&high2, 10, false);
  EXPECT_EQ(s.Next(), &high1);
  EXPECT_EQ(s.Next(), &high2);
  EXPECT_EQ(s.Next(), &high1);
  high1.credit = high2.credit = false;
  EXPECT_EQ(s.Next(), &mid);
  mid.credit = false;
  EXPECT_EQ(s.Next(), &low);
  high2.credit = true;
  EXPECT_EQ(s.Next(), &high2);
  EXPECT_EQ(s.size(), 4u);
}

TEST(ConsumerSet, RemoveKeepsTheRoundRobinCursor) {
  ConsumerSet s;
  FakeConsumer a, b, c;
  s.Add(&a, 0, false);
  s.Add(&b, 0, false);
  s.Add(&c, 0, false);
  EXPECT_EQ(s.Next(), &a);
  EXPECT_EQ(s.Next(), &b);
  EXPECT_TRUE(s.Remove(&a));  // c is still next
  EXPECT_EQ(s.Next(), &c);
  EXPECT_EQ(s.Next(), &b);
  EXPECT_FALSE(s.Remove(&a));
  EXPECT_TRUE(s.Remove(&b));
  EXPECT_TRUE(s.Remove(&c));
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s.Next(), nullptr);
}

TEST(ConsumerSet, ExclusiveFlagLastsWhileConsumersRemain) {
  ConsumerSet s;
  FakeConsumer a;
  s.Add(&a, 0, true);
  EXPECT_TRUE(s.has_exclusive());
  s.Remove(&a);
  EXPECT_FALSE(s.has_exclusive());
}

TEST(ConsumerSet, SingleActiveConsumerIsTheFirstAndFailsOverByPriority) {
  ConsumerSet s;
  s.set_single_active(true);
  FakeConsumer first, mid, top, top2;
  s.Add(&first, 0, false);
  s.Add(&mid, 5, false);
  s.Add(&top, 10, false);
  s.Add(&top2, 10, false);
  EXPECT_EQ(s.active(), &first);  // RabbitMQ 3.10: registration wins, not priority
  EXPECT_EQ(s.Next(), &first);
  EXPECT_EQ(s.Next(), &first);
  first.credit = false;
  EXPECT_EQ(s.Next(), nullptr);  // the others wait
  s.Remove(&first);
  EXPECT_EQ(s.active(), &top);
  s.Remove(&mid);
  EXPECT_EQ(s.active(), &top);
  s.Remove(&top);
  EXPECT_EQ(s.active(), &top2);
  s.Remove(&top2);
  EXPECT_EQ(s.active(), nullptr);
  EXPECT_EQ(s.Next(), nullptr);
}

TEST(ConsumerSet, TakeAllEmptiesTheSet) {
  ConsumerSet s;
  s.set_single_active(true);
  FakeConsumer a, b;
  s.Add(&a, 0, false);
  s.Add(&b, 1, true);
  auto all = s.TakeAll();
  EXPECT_EQ(all, (std::vector<Consumer*>{&b, &a}));
  EXPECT_TRUE(s.empty());
  EXPECT_FALSE(s.has_exclusive());
  EXPECT_EQ(s.active(), nullptr);
}

TEST(ConsumerArgs, PriorityMustBeAnInteger) {
  int64_t p = 7;
  EXPECT_FALSE(ConsumerPriority({}, "queue 'q' in vhost '/'", p));
  EXPECT_EQ(p, 0);
  EXPECT_FALSE(ConsumerPriority({{"x-priority", amqp::FieldValue(int64_t{-4})}}, "", p));
  EXPECT_EQ(p, -4);
  auto e = ConsumerPriority({{"x-priority", amqp::FieldValue("hi")}}, "queue 'q' in vhost '/'", p);
  ASSERT_TRUE(e);
  EXPECT_EQ(*e,
            "invalid arg 'x-priority' for queue 'q' in vhost '/': \"expected integer, got "
            "longstr\"");
}

TEST(ConsumerArgs, SingleActiveConsumerMustBeABool) {
  bool on = false;
  EXPECT_FALSE(
      SingleActiveConsumerArg({{"x-single-active-consumer", amqp::FieldValue(true)}}, "", on));
  EXPECT_TRUE(on);
  auto e = SingleActiveConsumerArg({{"x-single-active-consumer", amqp::FieldValue(int32_t{1})}},
                                   "queue 'q' in vhost '/'", on);
  ASSERT_TRUE(e);
  EXPECT_EQ(*e,
            "invalid arg 'x-single-active-consumer' for queue 'q' in vhost '/': "
            "{unacceptable_type,signedint}");
}

}  // namespace
}  // namespace warren::broker
