#include "storage/segment.h"

#include <gtest/gtest.h>

#include <string>

namespace warren::storage {
namespace {

std::span<const std::byte> Bytes(const std::string& s) { return std::as_bytes(std::span(s)); }

TEST(Segment, HeaderRoundTripAndRejectsOthers) {
  ByteBuffer b;
  EncodeSegmentHeader(b);
  ASSERT_EQ(b.size(), kSegmentHeaderSize);
  EXPECT_TRUE(CheckSegmentHeader(b.span()));
  auto bad = b;
  bad.data()[8] = std::byte{2};  // version 2 is not ours
  EXPECT_FALSE(CheckSegmentHeader(bad.span()));
  EXPECT_FALSE(CheckSegmentHeader(b.span().first(10)));
}

TEST(Segment, MessageRecordRoundTrip) {
  const std::string props = "\x90\x00\x02", body = "hello world";
  MessageRecord m;
  m.seq = 42;
  m.expires_at = 1234567;
  m.exchange = "ex";
  m.routing_key = "a.b";
  m.properties = Bytes(props);
  m.body = Bytes(body);
  ByteBuffer b;
  EncodeMessage(b, m);
  auto payload = CheckRecord(b.span());
  ASSERT_TRUE(payload);
  EXPECT_EQ(payload->size() + kRecordHeaderSize, b.size());
  auto d = DecodeMessage(*payload);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->seq, 42u);
  EXPECT_EQ(d->expires_at, 1234567u);
  EXPECT_EQ(d->exchange, "ex");
  EXPECT_EQ(d->routing_key, "a.b");
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(d->properties.data()), d->properties.size()),
            props);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(d->body.data()), d->body.size()), body);
}

TEST(Segment, LittleEndianLengthOnDisk) {
  ByteBuffer b;
  const uint64_t seqs[] = {7};
  EncodeSeqList(b, RecordType::kAcks, seqs);
  // payload = type (1) + count (4) + 8 = 13 bytes, little-endian in the first 4 bytes.
  EXPECT_EQ(std::to_integer<int>(b.data()[0]), 13);
  EXPECT_EQ(std::to_integer<int>(b.data()[1]), 0);
  EXPECT_EQ(std::to_integer<int>(b.data()[12]), 2);  // type
}

TEST(Segment, SeqListRoundTrip) {
  ByteBuffer b;
  const uint64_t seqs[] = {1, 5, 1ull << 40};
  EncodeSeqList(b, RecordType::kDelivered, seqs);
  auto payload = CheckRecord(b.span());
  ASSERT_TRUE(payload);
  std::vector<uint64_t> out;
  ASSERT_TRUE(DecodeSeqList(*payload, out));
  EXPECT_EQ(out, std::vector<uint64_t>(std::begin(seqs), std::end(seqs)));
}

// A segment holding messages 1, 2 and 3, each with the same 7-byte body.
ByteBuffer ThreeMessageSegment() {
  ByteBuffer b;
  EncodeSegmentHeader(b);
  static const std::string body = "payload";
  for (uint64_t i = 1; i <= 3; ++i) {
    MessageRecord m;
    m.seq = i;
    m.body = Bytes(body);
    EncodeMessage(b, m);
  }
  return b;
}

TEST(Segment, ScanStopsAtTornTailAndEveryTruncation) {
  ByteBuffer b = ThreeMessageSegment();
  const size_t full = b.size();
  const size_t one = (full - kSegmentHeaderSize) / 3;
  for (size_t cut = kSegmentHeaderSize; cut <= full; ++cut) {
    int n = 0;
    auto r = ScanRecords(b.span().first(cut), [&](uint8_t, auto, uint64_t, uint32_t) { ++n; });
    const size_t whole = (cut - kSegmentHeaderSize) / one;
    EXPECT_EQ(n, static_cast<int>(whole)) << cut;
    EXPECT_EQ(r.valid_end, kSegmentHeaderSize + whole * one) << cut;
    EXPECT_EQ(r.torn, cut != r.valid_end) << cut;
  }
}

TEST(Segment, ScanRejectsACorruptedByte) {
  ByteBuffer b = ThreeMessageSegment();
  const size_t one = (b.size() - kSegmentHeaderSize) / 3;
  b.data()[kSegmentHeaderSize + one + kRecordHeaderSize + 3] ^= std::byte{1};  // second record
  std::vector<uint64_t> seen;
  auto r = ScanRecords(b.span(), [&](uint8_t, std::span<const std::byte> p, uint64_t, uint32_t) {
    seen.push_back(DecodeMessage(p)->seq);
  });
  EXPECT_EQ(seen, std::vector<uint64_t>{1});
  EXPECT_TRUE(r.torn);
  EXPECT_EQ(r.valid_end, kSegmentHeaderSize + one);
}

TEST(Segment, ScanTellsAZeroTailFromATornOne) {
  ByteBuffer b = ThreeMessageSegment();
  const size_t full = b.size();
  for (int i = 0; i < 4096; ++i) b.PutU8(0);  // what File::Reserve leaves past the data
  auto r = ScanRecords(b.span(), [](uint8_t, auto, uint64_t, uint32_t) {});
  EXPECT_EQ(r.valid_end, full);
  EXPECT_TRUE(r.torn);
  EXPECT_TRUE(r.zero_tail);
  b.data()[full + 4000] = std::byte{1};  // one byte that is not zero: damage after all
  r = ScanRecords(b.span(), [](uint8_t, auto, uint64_t, uint32_t) {});
  EXPECT_TRUE(r.torn);
  EXPECT_FALSE(r.zero_tail);
  r = ScanRecords(b.span().first(full), [](uint8_t, auto, uint64_t, uint32_t) {});
  EXPECT_FALSE(r.torn);
  EXPECT_FALSE(r.zero_tail);
}

TEST(Segment, DecodeRejectsShortPayloads) {
  const std::string body = "b";
  MessageRecord m;
  m.exchange = "x";
  m.body = Bytes(body);
  ByteBuffer b;
  EncodeMessage(b, m);
  auto payload = *CheckRecord(b.span());
  // type 1 + seq 8 + expiry 8 + flags 1 + "x" 2 + "" 1 + props_len 4 = 25 fixed bytes: every
  // prefix that cuts into them is refused, never read past its end.
  ASSERT_EQ(payload.size(), 26u);
  EXPECT_TRUE(DecodeMessage(payload.first(25)));
  for (size_t n = 0; n < 25; ++n) {
    EXPECT_FALSE(DecodeMessage(payload.first(n))) << n;
  }
}

}  // namespace
}  // namespace warren::storage
