#include "broker/queue_args.h"

#include <gtest/gtest.h>

namespace warren::broker {
namespace {

const std::string kText = "queue 'q' in vhost '/'";

SettingsResult Parse(const amqp::FieldTable& args, const amqp::FieldTable& policy = {}) {
  return ParseQueueSettings(args, kText, "q", "/", policy);
}

TEST(QueueArgs, NoArgumentsIsAPlainQueue) {
  auto r = Parse({});
  ASSERT_TRUE(r.settings);
  EXPECT_EQ(r.settings->Features(), 0u);
}

TEST(QueueArgs, ParsesEveryFeature) {
  auto r = Parse({{"x-message-ttl", int32_t{1000}},
                  {"x-expires", int64_t{5000}},
                  {"x-max-length", uint8_t{3}},
                  {"x-max-length-bytes", int16_t{100}},
                  {"x-max-priority", int32_t{255}},
                  {"x-overflow", "reject-publish-dlx"},
                  {"x-dead-letter-exchange", "dlx"},
                  {"x-dead-letter-routing-key", "k"},
                  {"x-single-active-consumer", true}});
  ASSERT_TRUE(r.settings) << *r.error;
  const QueueSettings& s = *r.settings;
  EXPECT_EQ(s.message_ttl_ms, 1000u);
  EXPECT_EQ(s.expires_ms, 5000u);
  EXPECT_EQ(s.max_length, 3u);
  EXPECT_EQ(s.max_length_bytes, 100u);
  EXPECT_EQ(s.max_priority, 255);
  EXPECT_EQ(s.overflow, Overflow::kRejectPublishDlx);
  EXPECT_EQ(s.dead_letter_exchange, "dlx");
  EXPECT_EQ(s.dead_letter_routing_key, "k");
  EXPECT_TRUE(s.single_active_consumer);
  EXPECT_EQ(s.Features(),
            kFeatureTtl | kFeatureLimit | kFeaturePriority | kFeatureDeadLetter | kFeatureExpires);
}

TEST(QueueArgs, MaxPriorityZeroIsNotAPriorityQueue) {
  auto r = Parse({{"x-max-priority", int32_t{0}}});
  ASSERT_TRUE(r.settings);
  EXPECT_EQ(r.settings->Features() & kFeaturePriority, 0u);
}

struct BadCase {
  amqp::FieldTable args;
  std::string error;
};

TEST(QueueArgs, RefusesBadValuesWithRabbitMqsTexts) {
  const std::string p = "invalid arg ";
  const BadCase cases[] = {
      {{{"x-message-ttl", int32_t{-1}}},
       p + "'x-message-ttl' for " + kText + ": {value_negative,-1}"},
      {{{"x-message-ttl", "1"}},
       p + "'x-message-ttl' for " + kText + ": \"expected integer, got longstr\""},
      {{{"x-message-ttl", int64_t{315360000001}}},
       p + "'x-message-ttl' for " + kText + ": {value_too_large,315360000001}"},
      {{{"x-expires", int32_t{0}}}, p + "'x-expires' for " + kText + ": {value_zero,0}"},
      {{{"x-max-priority", int32_t{256}}},
       p + "'x-max-priority' for " + kText + ": {max_value_exceeded,256}"},
      {{{"x-overflow", "nope"}}, p + "'x-overflow' for " + kText + ": invalid_overflow"},
      {{{"x-overflow", true}}, p + "'x-overflow' for " + kText + ": {unacceptable_type,bool}"},
      {{{"x-dead-letter-routing-key", "k"}},
       p + "'x-dead-letter-routing-key' for " + kText + ": routing_key_but_no_dlx_defined"},
      {{{"x-dead-letter-exchange", int32_t{1}}},
       "invalid type 'signedint' for arg 'x-dead-letter-exchange' in queue 'q' in vhost '/'"},
      {{{"x-single-active-consumer", int32_t{1}}},
       p + "'x-single-active-consumer' for " + kText + ": {unacceptable_type,signedint}"},
  };
  for (const auto& c : cases) {
    auto r = Parse(c.args);
    ASSERT_TRUE(r.error) << c.error;
    EXPECT_EQ(*r.error, c.error);
  }
}

TEST(QueueArgs, PolicyMergesLowerLimitsAndFillsGaps) {
  auto r = Parse({{"x-max-length", int32_t{10}}, {"x-dead-letter-exchange", "arg"}},
                 {{"max-length", int32_t{5}},
                  {"message-ttl", int32_t{100}},
                  {"dead-letter-exchange", "policy"},
                  {"max-priority", int32_t{4}}});
  ASSERT_TRUE(r.settings);
  EXPECT_EQ(r.settings->max_length, 5u);
  EXPECT_EQ(r.settings->message_ttl_ms, 100u);
  EXPECT_EQ(r.settings->dead_letter_exchange, "arg");
  EXPECT_EQ(r.settings->max_priority, 4);
}

TEST(Expiration, ParsesLikeRabbitMq) {
  uint64_t ms = 7;
  EXPECT_FALSE(ParseExpiration("0", ms));
  EXPECT_EQ(ms, 0u);
  EXPECT_FALSE(ParseExpiration("60000", ms));
  EXPECT_EQ(ms, 60000u);
  EXPECT_FALSE(ParseExpiration("315360000000", ms));
  EXPECT_EQ(*ParseExpiration("abc", ms), "invalid expiration 'abc': no_integer");
  EXPECT_EQ(*ParseExpiration("", ms), "invalid expiration '': no_integer");
  EXPECT_EQ(*ParseExpiration("-1", ms), "invalid expiration '-1': {value_negative,-1}");
  EXPECT_EQ(*ParseExpiration("1.5", ms), "invalid expiration '1.5': {leftover_string,\".5\"}");
  EXPECT_EQ(*ParseExpiration("315360000001", ms),
            "invalid expiration '315360000001': {value_too_large,315360000001}");
}

}  // namespace
}  // namespace warren::broker
