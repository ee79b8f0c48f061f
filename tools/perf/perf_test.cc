#include <gtest/gtest.h>

#include "tools/perf/amqp_client.h"
#include "tools/perf/histogram.h"

namespace warren::perf {
namespace {

TEST(Histogram, QuantilesWithinBucketPrecision) {
  Histogram h;
  for (uint64_t v = 1; v <= 100000; ++v) h.Record(v * 1000);
  EXPECT_EQ(h.count(), 100000u);
  EXPECT_EQ(h.max(), 100000000u);
  const double p50 = static_cast<double>(h.Quantile(0.5));
  const double p99 = static_cast<double>(h.Quantile(0.99));
  EXPECT_NEAR(p50, 50e6, 50e6 * 0.02);
  EXPECT_NEAR(p99, 99e6, 99e6 * 0.02);
  EXPECT_EQ(h.Quantile(1.0), h.max());
}

TEST(Histogram, IndexIsMonotonicAndEdgesContainValues) {
  int prev = -1;
  for (uint64_t v :
       {0ull, 1ull, 63ull, 64ull, 65ull, 127ull, 128ull, 1000ull, 123456789ull, ~0ull}) {
    const int i = Histogram::Index(v);
    EXPECT_GE(i, prev);
    EXPECT_LT(i, Histogram::kBuckets);
    EXPECT_GE(Histogram::UpperEdge(i), v);
    prev = i;
  }
  Histogram empty;
  EXPECT_EQ(empty.Quantile(0.5), 0u);
}

TEST(ParseUri, Forms) {
  auto a = ParseUri("localhost:5673");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "localhost");
  EXPECT_EQ(a->port, 5673);
  EXPECT_EQ(a->user, "guest");
  auto b = ParseUri("amqp://u:p%40x@10.0.0.1:1234/%2Fv");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->host, "10.0.0.1");
  EXPECT_EQ(b->port, 1234);
  EXPECT_EQ(b->user, "u");
  EXPECT_EQ(b->password, "p@x");
  EXPECT_EQ(b->vhost, "/v");
  EXPECT_FALSE(ParseUri("host:99999"));
  EXPECT_FALSE(ParseUri("host:abc"));
}

TEST(FastPath, MatchesTheCodec) {
  ByteBuffer out;
  amqp::BasicDeliver d;
  d.consumer_tag = "amq.ctag-abc";
  d.delivery_tag = 0x0102030405060708ull;
  amqp::EncodeMethod(d, out);
  EXPECT_EQ(MethodKey(out.span()), kKeyBasicDeliver);
  uint64_t tag = 0;
  ASSERT_TRUE(ParseDeliverTag(out.span(), &tag));
  EXPECT_EQ(tag, d.delivery_tag);

  ByteBuffer ack_out;
  amqp::BasicNack n;
  n.delivery_tag = 77;
  n.multiple = true;
  amqp::EncodeMethod(n, ack_out);
  EXPECT_EQ(MethodKey(ack_out.span()), kKeyBasicNack);
  bool multiple = false;
  ASSERT_TRUE(ParseAck(ack_out.span(), &tag, &multiple));
  EXPECT_EQ(tag, 77u);
  EXPECT_TRUE(multiple);
  EXPECT_FALSE(ParseAck(ack_out.span().first(6), &tag, &multiple));
}

}  // namespace
}  // namespace warren::perf
