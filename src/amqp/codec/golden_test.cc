// Frames captured from independent clients (pika, py-amqp) by
// tools/codegen/capture_client_frames.py: each must decode, and re-encode byte for byte.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "amqp/codec/frame_reader.h"
#include "amqp/codec/frame_writer.h"
#include "amqp/codec/methods.h"

namespace warren::amqp {
namespace {

std::vector<std::byte> Load(const std::string& name) {
  std::ifstream f(std::string(WARREN_CODEC_TESTDATA) + "/" + name, std::ios::binary);
  std::vector<char> raw((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(raw.size());
  std::memcpy(out.data(), raw.data(), raw.size());
  return out;
}

struct Decoded {
  std::vector<Method> methods;
  std::vector<BasicProperties> properties;
  std::vector<std::string> bodies;
};

// exact_properties=false: the client writes 64-bit integers as 'L', which decodes to the same
// value as 'l' and re-encodes as 'l' (RabbitMQ does the same), so only sizes and values match.
Decoded DecodeAll(const std::vector<std::byte>& bytes, bool exact_properties = true) {
  Decoded d;
  FrameReader reader(131072);
  std::span<const std::byte> in(bytes);
  while (!in.empty()) {
    auto r = reader.Next(in);
    auto* parsed = std::get_if<FrameParsed>(&r);
    EXPECT_NE(parsed, nullptr) << "frame did not parse; " << in.size() << " bytes left";
    if (parsed == nullptr) break;
    const Frame& f = parsed->frame;
    if (f.type == kFrameMethodType) {
      auto m = DecodeMethod(f.payload);
      EXPECT_TRUE(m.has_value());
      if (!m) break;
      ByteBuffer again;
      EncodeMethod(m.value(), again);
      EXPECT_EQ(std::vector<std::byte>(again.span().begin(), again.span().end()),
                std::vector<std::byte>(f.payload.begin(), f.payload.end()))
          << "method re-encoding differs";
      d.methods.push_back(std::move(m).value());
    } else if (f.type == kFrameHeaderType) {
      auto h = DecodeContentHeader(f.payload);
      EXPECT_TRUE(h.has_value());
      if (!h) break;
      auto p = DecodeProperties(h.value().raw_properties);
      EXPECT_TRUE(p.has_value());
      ByteBuffer again;
      EncodeProperties(p.value(), again);
      if (exact_properties) {
        EXPECT_EQ(std::vector<std::byte>(again.span().begin(), again.span().end()),
                  std::vector<std::byte>(h.value().raw_properties.begin(),
                                         h.value().raw_properties.end()))
            << "properties re-encoding differs";
      } else {
        EXPECT_EQ(again.size(), h.value().raw_properties.size());
        EXPECT_EQ(DecodeProperties(again.span()).value(), p.value());
      }
      d.properties.push_back(std::move(p).value());
    } else if (f.type == kFrameBodyType) {
      d.bodies.emplace_back(reinterpret_cast<const char*>(f.payload.data()), f.payload.size());
    }
    in = in.subspan(parsed->consumed);
  }
  return d;
}

template <typename M>
const M* FindMethod(const Decoded& d) {
  for (const auto& m : d.methods) {
    if (const auto* x = std::get_if<M>(&m)) return x;
  }
  return nullptr;
}

TEST(Golden, PikaFramesDecodeAndReencodeIdentically) {
  auto bytes = Load("pika.bin");
  ASSERT_GT(bytes.size(), 100u);
  Decoded d = DecodeAll(bytes);
  const auto* start_ok = FindMethod<ConnectionStartOk>(d);
  ASSERT_NE(start_ok, nullptr);
  EXPECT_EQ(start_ok->mechanism, "PLAIN");
  EXPECT_EQ(start_ok->response, std::string("\0guest\0guest", 12));
  const FieldValue* product = Find(start_ok->client_properties, "product");
  ASSERT_NE(product, nullptr);
  EXPECT_EQ(*product->AsString(), "Pika Python Client Library");
  const auto* declare = FindMethod<QueueDeclare>(d);
  ASSERT_NE(declare, nullptr);
  EXPECT_EQ(declare->queue, "golden");
  EXPECT_EQ(Find(declare->arguments, "x-max-priority")->AsInt(), 10);
  const auto* publish = FindMethod<BasicPublish>(d);
  ASSERT_NE(publish, nullptr);
  EXPECT_EQ(publish->exchange, "amq.direct");
  EXPECT_EQ(publish->routing_key, "golden");
  ASSERT_EQ(d.properties.size(), 2u);
  const BasicProperties& p = d.properties[0];
  EXPECT_EQ(p.content_type, "application/json");
  EXPECT_EQ(p.delivery_mode, 2);
  EXPECT_EQ(p.priority, 5);
  EXPECT_EQ(p.expiration, "60000");
  EXPECT_EQ(p.timestamp, 1700000000u);
  EXPECT_EQ(p.cluster_id, "c1");
  ASSERT_TRUE(p.headers.has_value());
  EXPECT_EQ(Find(*p.headers, "i")->AsInt(), 42);
  EXPECT_EQ(Find(*p.headers, "big")->AsInt(), int64_t{1} << 40);
  EXPECT_NE(Find(*p.headers, "nested")->get_if<FieldTable>(), nullptr);
  EXPECT_EQ(Find(*p.headers, "list")->get_if<FieldArray>()->size(), 3u);
  // The second publish has an empty body: pika sends no body frame for it.
  ASSERT_EQ(d.bodies.size(), 1u);
  EXPECT_EQ(d.bodies[0], "hello golden");
  EXPECT_NE(FindMethod<ConnectionClose>(d), nullptr);
}

TEST(Golden, PyAmqpFramesDecodeAndReencodeIdentically) {
  auto bytes = Load("pyamqp.bin");
  ASSERT_GT(bytes.size(), 100u);
  Decoded d = DecodeAll(bytes, /*exact_properties=*/false);
  const auto* start_ok = FindMethod<ConnectionStartOk>(d);
  ASSERT_NE(start_ok, nullptr);
  EXPECT_EQ(*Find(start_ok->client_properties, "product")->AsString(), "py-amqp");
  const auto* declare = FindMethod<QueueDeclare>(d);
  ASSERT_NE(declare, nullptr);
  EXPECT_EQ(Find(declare->arguments, "x-expires")->AsInt(), 120000);
  ASSERT_EQ(d.properties.size(), 1u);
  EXPECT_EQ(d.properties[0].correlation_id, "corr-1");
  // py-amqp's 'L' comes back as a signed 64-bit value.
  EXPECT_EQ(Find(*d.properties[0].headers, "big")->AsInt(), int64_t{1} << 40);
  ASSERT_EQ(d.bodies.size(), 1u);
  EXPECT_NE(FindMethod<ChannelClose>(d), nullptr);
}

}  // namespace
}  // namespace warren::amqp
