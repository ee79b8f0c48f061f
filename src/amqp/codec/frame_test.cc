#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "amqp/codec/frame_reader.h"
#include "amqp/codec/frame_writer.h"
#include "amqp/codec/methods.h"
#include "amqp/codec/wire.h"

namespace warren::amqp {
namespace {

std::span<const std::byte> Bytes(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

ByteBuffer SampleStream() {
  ByteBuffer out;
  BasicPublish pub;
  pub.exchange = "ex";
  pub.routing_key = "rk";
  WriteMethod(out, 1, pub);
  BasicProperties p;
  p.content_type = "text/plain";
  ByteBuffer props;
  EncodeProperties(p, props);
  WriteContentHeader(out, 1, 60, 5, props.span());
  std::string body = "hello";
  WriteBody(out, 1, Bytes(body), 131072);
  WriteHeartbeat(out);
  return out;
}

// Feeds the stream in two pieces split at every position; the frames must come out the same.
TEST(FrameReader, SplitAtEveryByte) {
  ByteBuffer stream = SampleStream();
  FrameReader reader(131072);
  for (size_t split = 0; split <= stream.size(); ++split) {
    std::vector<std::byte> buf(stream.data(), stream.data() + split);
    std::vector<uint8_t> types;
    size_t fed = split;
    while (true) {
      auto r = reader.Next(buf);
      if (auto* p = std::get_if<FrameParsed>(&r)) {
        types.push_back(p->frame.type);
        buf.erase(buf.begin(), buf.begin() + static_cast<ptrdiff_t>(p->consumed));
        continue;
      }
      ASSERT_TRUE(std::holds_alternative<NeedMore>(r));
      if (fed == stream.size()) break;
      buf.insert(buf.end(), stream.data() + fed, stream.data() + stream.size());
      fed = stream.size();
    }
    EXPECT_EQ(types, (std::vector<uint8_t>{1, 2, 3, 8})) << "split at " << split;
    EXPECT_TRUE(buf.empty());
  }
}

TEST(FrameReader, HeartbeatIsEightBytes) {
  ByteBuffer out;
  WriteHeartbeat(out);
  ASSERT_EQ(out.size(), 8u);
  EXPECT_EQ(std::to_integer<int>(out.data()[0]), 8);
  EXPECT_EQ(std::to_integer<int>(out.data()[7]), 0xCE);
}

TEST(FrameReader, BadFrameEndIsFrameError) {
  ByteBuffer out;
  WriteHeartbeat(out);
  out.data()[7] = std::byte{0x00};
  auto r = FrameReader(131072).Next(out.span());
  auto* c = std::get_if<Close>(&r);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->reply_code, 501);
  EXPECT_TRUE(c->hard());
  EXPECT_EQ(c->reply_text.rfind("FRAME_ERROR - ", 0), 0u);
}

TEST(FrameReader, UnknownFrameTypeIsFrameError) {
  std::string f("\x09\x00\x00\x00\x00\x00\x00\xce", 8);
  auto r = FrameReader(131072).Next(Bytes(f));
  ASSERT_TRUE(std::holds_alternative<Close>(r));
  EXPECT_EQ(std::get<Close>(r).reply_code, 501);
}

TEST(FrameReader, OversizeFrameRefusedFromHeaderAlone) {
  // A 4 GiB length must be refused before any of its payload arrives.
  std::string f("\x03\x00\x01\xff\xff\xff\xff", 7);
  auto r = FrameReader(131072).Next(Bytes(f));
  ASSERT_TRUE(std::holds_alternative<Close>(r));
  EXPECT_EQ(std::get<Close>(r).reply_code, 501);
  // RabbitMQ tolerates payloads up to frame_max (frame_max - 8 plus 8 bytes of slack).
  FrameReader small(4096);
  ByteBuffer ok;
  std::string body(4096, 'x');
  size_t at = BeginFrame(ok, kFrameBodyType, 1);
  ok.PutString(body);
  EndFrame(ok, at);
  EXPECT_TRUE(std::holds_alternative<FrameParsed>(small.Next(ok.span())));
  ByteBuffer big;
  at = BeginFrame(big, kFrameBodyType, 1);
  big.PutString(body + "y");
  EndFrame(big, at);
  EXPECT_TRUE(std::holds_alternative<Close>(small.Next(big.span())));
}

TEST(FrameWriter, BodySplitByFrameMax) {
  ByteBuffer out;
  std::string body(10000, 'a');
  WriteBody(out, 3, Bytes(body), 4096);
  FrameReader reader(4096);
  std::span<const std::byte> in = out.span();
  std::vector<size_t> sizes;
  while (!in.empty()) {
    auto r = reader.Next(in);
    auto& p = std::get<FrameParsed>(r);
    EXPECT_EQ(p.frame.channel, 3);
    sizes.push_back(p.frame.payload.size());
    in = in.subspan(p.consumed);
  }
  EXPECT_EQ(sizes, (std::vector<size_t>{4088, 4088, 1824}));
}

TEST(FrameWriter, EmptyBodyHasNoBodyFrame) {
  ByteBuffer out;
  WriteBody(out, 1, {}, 131072);
  EXPECT_TRUE(out.empty());
}

TEST(FrameWriter, WriteDeliverMatchesTheGenericEncoder) {
  BasicDeliver d;
  d.consumer_tag = "amq.ctag-" + std::string(40, 'c');
  d.delivery_tag = 0x0102030405060708ull;
  d.redelivered = true;
  d.exchange = "";
  d.routing_key = std::string(255, 'k');
  BasicProperties p;
  p.delivery_mode = 2;
  ByteBuffer props;
  EncodeProperties(p, props);
  std::string body(300, 'b');
  ByteBuffer generic;
  WriteContent(generic, 7, d, props.span(), Bytes(body), 128);
  ByteBuffer direct;
  WriteDeliver(direct, 7, d.consumer_tag, d.delivery_tag, d.redelivered, d.exchange, d.routing_key,
               props.span(), Bytes(body), 128);
  EXPECT_EQ(std::vector<std::byte>(direct.span().begin(), direct.span().end()),
            std::vector<std::byte>(generic.span().begin(), generic.span().end()));
}

TEST(Methods, DecodeMethodAsMatchesDecodeMethod) {
  BasicPublish pub;
  pub.exchange = "amq.direct";
  pub.routing_key = std::string(200, 'r');
  pub.mandatory = true;
  ByteBuffer out;
  EncodeMethod(pub, out);
  auto typed = DecodeMethodAs<BasicPublish>(out.span());
  ASSERT_TRUE(typed.has_value());
  EXPECT_EQ(typed.value(), std::get<BasicPublish>(DecodeMethod(out.span()).value()));
  // Truncated: the same 501 as the generic decoder (RabbitMQ 3.10: FRAME_ERROR).
  auto cut = DecodeMethodAs<BasicPublish>(out.span().first(out.size() - 1));
  ASSERT_FALSE(cut.has_value());
  EXPECT_EQ(cut.error().reply_code, 501);
  // Another method's payload is refused, not misread.
  ByteBuffer ack;
  EncodeMethod(BasicAck{}, ack);
  EXPECT_FALSE(DecodeMethodAs<BasicPublish>(ack.span()).has_value());
}

TEST(ContentHeader, DecodesAndValidatesProperties) {
  ByteBuffer out;
  BasicProperties p;
  p.delivery_mode = 2;
  ByteBuffer props;
  EncodeProperties(p, props);
  WriteContentHeader(out, 1, 60, 42, props.span());
  auto frame = std::get<FrameParsed>(FrameReader(131072).Next(out.span())).frame;
  auto h = DecodeContentHeader(frame.payload);
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h.value().class_id, 60);
  EXPECT_EQ(h.value().body_size, 42u);
  EXPECT_EQ(h.value().raw_properties.size(), props.size());
  EXPECT_EQ(h.value().properties.delivery_mode, std::optional<uint8_t>(2));
  // Flags announce a property that is missing: syntax error, not a read past the end.
  std::string bad("\x00\x3c\x00\x00\x00\x00\x00\x00\x00\x01\x80\x00", 12);
  auto e = DecodeContentHeader(Bytes(bad));
  ASSERT_FALSE(e.has_value());
  EXPECT_EQ(e.error().reply_code, 502);
}

TEST(ProtocolHeader, AcceptsRabbitMqsTwoForms) {
  EXPECT_EQ(CheckProtocolHeader(Bytes(std::string("AMQP\0\0\x09\x01", 8))), HeaderCheck::kOk);
  EXPECT_EQ(CheckProtocolHeader(Bytes(std::string("AMQP\x01\x01\x00\x09", 8))), HeaderCheck::kOk);
  EXPECT_EQ(CheckProtocolHeader(Bytes(std::string("AMQ", 3))), HeaderCheck::kNeedMore);
  EXPECT_EQ(CheckProtocolHeader(Bytes(std::string("AMQP\0\0\x09\x02", 8))), HeaderCheck::kBad);
  EXPECT_EQ(CheckProtocolHeader(Bytes(std::string("GET / HTTP/1.1\r\n"))), HeaderCheck::kBad);
  EXPECT_EQ(CheckProtocolHeader(Bytes(std::string("\x16\x03\x01", 3))), HeaderCheck::kBad);
}

TEST(Methods, UnknownMethodAndTrailingBytes) {
  std::string unknown("\x00\x3c\x00\x63", 4);
  auto r = DecodeMethod(Bytes(unknown));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().reply_code, 540);
  ByteBuffer out;
  EncodeMethod(ChannelOpen{}, out);
  out.PutU8(0);
  auto t = DecodeMethod(out.span());
  ASSERT_FALSE(t.has_value());
  // RabbitMQ 3.10: "FRAME_ERROR - cannot decode <<...>>", the arguments as an Erlang binary.
  EXPECT_EQ(t.error().reply_code, 501);
  EXPECT_EQ(t.error().reply_text, "FRAME_ERROR - cannot decode <<0,0>>");
  EXPECT_EQ(t.error().class_id, 20);
  EXPECT_EQ(t.error().method_id, 10);
}

TEST(Methods, ReplyCodeTableMatchesRabbitMq) {
  for (uint16_t soft : {311, 312, 313, 403, 404, 405, 406}) EXPECT_FALSE(IsHardError(soft));
  for (uint16_t hard : {320, 402, 501, 502, 503, 504, 505, 506, 530, 540, 541}) {
    EXPECT_TRUE(IsHardError(hard));
  }
  EXPECT_EQ(ReplyCodeName(312), "NO_ROUTE");
  EXPECT_EQ(ReplyCodeName(406), "PRECONDITION_FAILED");
  EXPECT_EQ(ReplyCodeName(530), "NOT_ALLOWED");
  EXPECT_EQ(MakeClose(404, "no queue 'q' in vhost '/'").reply_text,
            "NOT_FOUND - no queue 'q' in vhost '/'");
  EXPECT_EQ(MakeClose(406, std::string(400, 'x')).reply_text.size(), 255u);
  EXPECT_EQ(MakeClose(406, std::string(400, 'x')).reply_text.substr(249), "xxx...");
}

TEST(Methods, BitsPackIntoOneOctet) {
  QueueDeclare q;
  q.queue = "q";
  q.passive = false;
  q.durable = true;
  q.exclusive = false;
  q.auto_delete = true;
  q.no_wait = true;
  ByteBuffer out;
  EncodeMethod(q, out);
  // class, method, reserved-1, "q", bits, empty table
  ASSERT_EQ(out.size(), 2u + 2 + 2 + 2 + 1 + 4);
  EXPECT_EQ(std::to_integer<int>(out.data()[8]), 0b11010);
}

TEST(Methods, ExtensionsFromRabbitMq) {
  ConnectionBlocked b;
  b.reason = "low on memory";
  ByteBuffer out;
  EncodeMethod(b, out);
  EXPECT_EQ(LoadU16(out.data()), 10);
  EXPECT_EQ(LoadU16(out.data() + 2), 60);
  EXPECT_EQ(std::string(FindMethodInfo(10, 61)->name), "connection.unblocked");
}

}  // namespace
}  // namespace warren::amqp

namespace warren::amqp {
namespace {

TEST(Utf8, StrictValidation) {
  EXPECT_TRUE(ValidUtf8(""));
  EXPECT_TRUE(ValidUtf8("plain.ascii-name"));
  EXPECT_TRUE(ValidUtf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x87"));  // é € rabbit
  EXPECT_FALSE(ValidUtf8("\xff"));
  EXPECT_FALSE(ValidUtf8("\xc3"));              // truncated
  EXPECT_FALSE(ValidUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(ValidUtf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(ValidUtf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(ValidUtf8("a\x80"));             // stray continuation
}

TEST(Utf8, MethodNamesAreCheckedButNotPublishKeys) {
  ByteBuffer b;
  QueueDeclare d;
  d.queue = "q\xff";
  WriteMethod(b, 1, d);
  auto m = DecodeMethod(b.span().subspan(7, b.size() - 8));
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().reply_code, kFrameError);
  EXPECT_TRUE(m.error().hard());
  ByteBuffer p;
  BasicPublish pub;
  pub.routing_key = "k\xff";
  WriteMethod(p, 1, pub);
  EXPECT_TRUE(DecodeMethod(p.span().subspan(7, p.size() - 8)));
}

}  // namespace
}  // namespace warren::amqp
