#include "broker/broker.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "amqp/codec/methods.h"

namespace warren::broker {
namespace {

struct TopicCase {
  const char* pattern;
  const char* key;
  bool match;
};

TEST(Topic, RabbitMqEdgeCases) {
  const TopicCase cases[] = {
      {"#", "", true},
      {"#", "a.b.c", true},
      {"a.#", "a", true},
      {"a.#", "a.b.c", true},
      {"a.#", "b", false},
      {"#.b", "b", true},
      {"#.b", "a.b", true},
      {"#.b", "a.c", false},
      {"*", "a", true},
      {"*", "", false},
      {"*", "a.b", false},
      {"*.*", "a", false},
      {"*.*", "a.b", true},
      {"a.*.c", "a.b.c", true},
      {"a.*.c", "a.c", false},
      {"a.#.c", "a.c", true},
      {"a.#.c", "a.x.y.c", true},
      {"a..b", "a..b", true},
      {"a.*.b", "a..b", true},
      {"", "", true},
      {"", "a", false},
      {"#.#", "a", true},
      {"a.b", "a.b", true},
      {"a.b", "a.bc", false},
      {"*.#", "", false},
      {"#.*", "a", true},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(TopicMatches(c.pattern, c.key), c.match) << c.pattern << " vs '" << c.key << "'";
  }
}

TEST(Headers, MatchModes) {
  amqp::FieldTable headers{{"a", amqp::FieldValue(int32_t{1})},
                           {"b", amqp::FieldValue("x")},
                           {"x-c", amqp::FieldValue("y")}};
  using T = amqp::FieldTable;
  EXPECT_TRUE(HeadersMatch(T{{"a", amqp::FieldValue(int64_t{1})}}, &headers))
      << "integers compare by value";
  EXPECT_FALSE(HeadersMatch(T{{"a", amqp::FieldValue(1)}, {"z", amqp::FieldValue(1)}}, &headers));
  EXPECT_TRUE(HeadersMatch(T{{"x-match", amqp::FieldValue("any")},
                             {"a", amqp::FieldValue(1)},
                             {"z", amqp::FieldValue(1)}},
                           &headers));
  EXPECT_TRUE(HeadersMatch(T{{"b", amqp::FieldValue(amqp::Void{})}}, &headers)) << "void = present";
  EXPECT_TRUE(HeadersMatch(T{{"x-c", amqp::FieldValue("nope")}}, &headers)) << "x- ignored";
  EXPECT_FALSE(HeadersMatch(
      T{{"x-match", amqp::FieldValue("all-with-x")}, {"x-c", amqp::FieldValue("nope")}}, &headers));
  EXPECT_TRUE(HeadersMatch(T{}, &headers)) << "all with no keys matches everything";
  EXPECT_FALSE(HeadersMatch(T{{"x-match", amqp::FieldValue("any")}}, &headers))
      << "any with no keys matches nothing";
}

class RecordingConsumer : public Consumer {
 public:
  bool CanAccept() const override { return credit > 0; }
  void Deliver(const std::shared_ptr<Queue>&, QueueEntry e) override {
    --credit;
    got.push_back(std::move(e));
  }
  void OnQueueDeleted() override { cancelled = true; }
  int credit = 1000;
  std::vector<QueueEntry> got;
  bool cancelled = false;
};

MessagePtr Msg(const std::string& ex, const std::string& key, const std::string& body = "") {
  auto m = MakeMessage();
  m->exchange = ex;
  m->routing_key = key;
  for (char c : body) m->data.push_back(static_cast<std::byte>(c));
  return m;
}

TEST(Vhost, DefaultExchangeAndFanoutRouting) {
  Vhost v("/");
  ConnectionId c(1);
  ASSERT_TRUE(v.QueueDeclare("q1", false, false, false, false, {}, c).ok());
  ASSERT_TRUE(v.QueueDeclare("q2", false, false, false, false, {}, c).ok());
  EXPECT_EQ(*v.Publish(Msg("", "q1")).value, 1u);
  EXPECT_FALSE(v.ExchangeDeclare("f", "fanout", false, false, false, false, {}));
  EXPECT_FALSE(v.QueueBind("q1", "f", "", {}, c));
  EXPECT_FALSE(v.QueueBind("q2", "f", "", {}, c));
  EXPECT_EQ(*v.Publish(Msg("f", "whatever")).value, 2u);
  EXPECT_EQ(v.FindQueue("q1")->message_count(), 2u);
  auto err = v.Publish(Msg("nope", "")).error;
  ASSERT_TRUE(err);
  EXPECT_EQ(err->reply_code, 404);
  EXPECT_EQ(err->text, "no exchange 'nope' in vhost '/'");
}

TEST(Vhost, ExchangeToExchangeCyclesDeliverOnce) {
  Vhost v("/");
  ConnectionId c(1);
  v.QueueDeclare("q", false, false, false, false, {}, c);
  v.ExchangeDeclare("a", "fanout", false, false, false, false, {});
  v.ExchangeDeclare("b", "fanout", false, false, false, false, {});
  EXPECT_FALSE(v.ExchangeBind("b", "a", "", {}));
  EXPECT_FALSE(v.ExchangeBind("a", "b", "", {}));
  v.QueueBind("q", "a", "", {}, c);
  v.QueueBind("q", "b", "", {}, c);
  EXPECT_EQ(*v.Publish(Msg("a", "")).value, 1u);
  EXPECT_EQ(v.FindQueue("q")->message_count(), 1u);
}

TEST(Vhost, AlternateExchange) {
  Vhost v("/");
  ConnectionId c(1);
  v.QueueDeclare("unrouted", false, false, false, false, {}, c);
  v.ExchangeDeclare("ae", "fanout", false, false, false, false, {});
  v.QueueBind("unrouted", "ae", "", {}, c);
  v.ExchangeDeclare("main", "direct", false, false, false, false,
                    {{"alternate-exchange", amqp::FieldValue("ae")}});
  EXPECT_EQ(*v.Publish(Msg("main", "nothing-bound")).value, 1u);
}

TEST(Vhost, EquivalenceAndExclusivityErrors) {
  Vhost v("/");
  ConnectionId a(1), b(2);
  v.QueueDeclare("q", false, false, false, false, {}, a);
  auto r = v.QueueDeclare("q", false, true, false, false, {}, a);
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->reply_code, 406);
  EXPECT_EQ(r.error->text,
            "inequivalent arg 'durable' for queue 'q' in vhost '/': received 'true' but current "
            "is 'false'");
  v.QueueDeclare("ex", false, false, true, false, {}, a);
  // Exclusivity (405) is checked before equivalence (406).
  auto locked = v.QueueDeclare("ex", false, true, false, false, {}, b);
  ASSERT_TRUE(locked.error);
  EXPECT_EQ(locked.error->reply_code, 405);
  v.QueueDeclare("ttl", false, false, false, false, {{"x-message-ttl", amqp::FieldValue(1000)}}, a);
  auto ttl = v.QueueDeclare("ttl", false, false, false, false,
                            {{"x-message-ttl", amqp::FieldValue(2000)}}, a);
  ASSERT_TRUE(ttl.error);
  // RabbitMQ 3.10 shows only the values when both sides have one (checked on 5672; the long
  // form "the value '2000' of type 'signedint'" is for a side that has none).
  EXPECT_EQ(ttl.error->text,
            "inequivalent arg 'x-message-ttl' for queue 'ttl' in vhost '/': received '2000' but "
            "current is '1000'");
  EXPECT_TRUE(v.QueueDeclare("ttl", false, false, false, false,
                             {{"x-message-ttl", amqp::FieldValue(int64_t{1000})}}, a)
                  .ok())
      << "integer widths compare by value";
  auto ex = v.ExchangeDeclare("amq.custom", "direct", false, false, false, false, {});
  ASSERT_TRUE(ex);
  EXPECT_EQ(ex->reply_code, 403);
  v.OnConnectionClosed(a);
  EXPECT_EQ(v.FindQueue("ex"), nullptr) << "exclusive queue goes with its connection";
  EXPECT_NE(v.FindQueue("q"), nullptr);
}

TEST(Vhost, ClosingAConnectionDeletesOnlyItsExclusiveQueues) {
  Vhost v("/");
  ConnectionId a(1), b(2), c(3);
  for (int i = 0; i < 3; ++i) {
    v.QueueDeclare("a" + std::to_string(i), false, false, true, false, {}, a);
    v.QueueDeclare("b" + std::to_string(i), false, false, true, false, {}, b);
  }
  v.QueueDeclare("shared", false, false, false, false, {}, a);
  // Deleted by hand, then a queue of another owner takes the name: closing `a` leaves it.
  ASSERT_TRUE(v.QueueDelete("a1", false, false, a).ok());
  v.QueueDeclare("a1", false, false, true, false, {}, c);
  EXPECT_EQ(v.queue_count(), 7u);
  v.OnConnectionClosed(a);
  EXPECT_EQ(v.FindQueue("a0"), nullptr);
  EXPECT_EQ(v.FindQueue("a2"), nullptr);
  EXPECT_NE(v.FindQueue("a1"), nullptr) << "now owned by c";
  EXPECT_NE(v.FindQueue("shared"), nullptr);
  for (int i = 0; i < 3; ++i) EXPECT_NE(v.FindQueue("b" + std::to_string(i)), nullptr);
  v.OnConnectionClosed(a);  // again: nothing left to do
  v.OnConnectionClosed(c);
  EXPECT_EQ(v.FindQueue("a1"), nullptr);
  v.OnConnectionClosed(b);
  EXPECT_EQ(v.queue_count(), 1u);
}

TEST(Vhost, MaxQueuesRefusesOnlyNewQueues) {
  BrokerOptions o;
  o.max_queues = 2;
  Vhost v("/", nullptr, o);
  ConnectionId c(1);
  ASSERT_TRUE(v.QueueDeclare("a", false, false, false, false, {}, c).ok());
  ASSERT_TRUE(v.QueueDeclare("b", false, false, false, false, {}, c).ok());
  auto r = v.QueueDeclare("c", false, false, false, false, {}, c);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error->reply_code, 406);
  EXPECT_EQ(r.error->text, "cannot declare queue 'c': queue limit in vhost '/' (2) is reached");
  EXPECT_TRUE(v.QueueDeclare("a", false, false, false, false, {}, c).ok()) << "redeclare";
  EXPECT_TRUE(v.QueueDeclare("b", true, false, false, false, {}, c).ok()) << "passive";
  ASSERT_TRUE(v.QueueDelete("a", false, false, c).ok());
  EXPECT_TRUE(v.QueueDeclare("c", false, false, false, false, {}, c).ok()) << "room again";
}

TEST(Queue, RoundRobinSkipsConsumersWithoutCredit) {
  Vhost v("/");
  ConnectionId c(1);
  v.QueueDeclare("q", false, false, false, false, {}, c);
  auto q = v.FindQueue("q");
  RecordingConsumer a, b;
  a.credit = 1;
  ASSERT_FALSE(v.Consume(q, &a, false));
  ASSERT_FALSE(v.Consume(q, &b, false));
  for (int i = 0; i < 5; ++i) v.Publish(Msg("", "q"));
  EXPECT_EQ(a.got.size(), 1u);
  EXPECT_EQ(b.got.size(), 4u);
}

TEST(Queue, RequeueRestoresPositionAndMarksRedelivered) {
  Vhost v("/");
  ConnectionId c(1);
  v.QueueDeclare("q", false, false, false, false, {}, c);
  auto q = v.FindQueue("q");
  for (int i = 0; i < 3; ++i) v.Publish(Msg("", "q", std::to_string(i)));
  auto first = *q->Get();
  auto second = *q->Get();
  q->Requeue({second, first});
  auto a = *q->Get();
  auto b = *q->Get();
  auto c3 = *q->Get();
  EXPECT_EQ(a.seq, first.seq);
  EXPECT_TRUE(a.redelivered);
  EXPECT_EQ(b.seq, second.seq);
  EXPECT_FALSE(c3.redelivered);
}

TEST(Queue, AutoDeleteAfterLastConsumerAndCancelNotification) {
  Vhost v("/");
  ConnectionId c(1);
  v.QueueDeclare("ad", false, false, false, true, {}, c);
  auto q = v.FindQueue("ad");
  RecordingConsumer a;
  v.Consume(q, &a, false);
  v.Cancel(q, &a);
  EXPECT_EQ(v.FindQueue("ad"), nullptr);
  v.QueueDeclare("q", false, false, false, false, {}, c);
  auto q2 = v.FindQueue("q");
  RecordingConsumer b;
  v.Consume(q2, &b, false);
  EXPECT_EQ(*v.QueueDelete("q", false, false, c).value, 0u);
  EXPECT_TRUE(b.cancelled);
  EXPECT_TRUE(q2->deleted());
}

TEST(Queue, ExclusiveConsumer) {
  Vhost v("/");
  ConnectionId c(1);
  v.QueueDeclare("q", false, false, false, false, {}, c);
  auto q = v.FindQueue("q");
  RecordingConsumer a, b;
  ASSERT_FALSE(v.Consume(q, &a, true));
  auto e = v.Consume(q, &b, false);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->reply_code, 403);
  EXPECT_EQ(e->text, "queue 'q' in vhost '/' in exclusive use");
}

}  // namespace
}  // namespace warren::broker

namespace warren::broker {
namespace {

// The trie must agree with the reference matcher (TopicMatches) on every pattern/key pair.
TEST(TopicTrie, AgreesWithReferenceMatcher) {
  std::mt19937 rng(42);
  const char* words[] = {"a", "b", "c", "*", "#", ""};
  auto make = [&](bool pattern) {
    std::string s;
    const int n = static_cast<int>(rng() % 5);
    for (int i = 0; i < n; ++i) {
      if (i) s += '.';
      s += words[rng() % (pattern ? 6 : 3)];
      if (!pattern && rng() % 7 == 0) s.pop_back();  // empty words in keys too
    }
    return s;
  };
  std::vector<std::string> patterns;
  TopicTrie trie;
  for (size_t i = 0; i < 2000; ++i) {
    patterns.push_back(make(true));
    trie.Insert(patterns.back(), i);
  }
  for (int k = 0; k < 500; ++k) {
    std::string key = make(false);
    std::vector<size_t> hits;
    trie.Match(key, hits);
    std::set<size_t> got(hits.begin(), hits.end());
    for (size_t i = 0; i < patterns.size(); ++i) {
      ASSERT_EQ(got.contains(i), TopicMatches(patterns[i], key))
          << "pattern '" << patterns[i] << "' key '" << key << "'";
    }
  }
}

TEST(Vhost, ThousandsOfDirectAndTopicBindingsRouteExactly) {
  Vhost v("/");
  ConnectionId c(1);
  v.ExchangeDeclare("t", "topic", false, false, false, false, {});
  for (int i = 0; i < 3000; ++i) {
    std::string q = "q" + std::to_string(i);
    v.QueueDeclare(q, false, false, false, false, {}, c);
    v.QueueBind(q, "amq.direct", "k" + std::to_string(i), {}, c);
    v.QueueBind(q, "t", "s." + std::to_string(i) + ".*", {}, c);
  }
  EXPECT_EQ(*v.Publish(Msg("amq.direct", "k1234")).value, 1u);
  EXPECT_EQ(v.FindQueue("q1234")->message_count(), 1u);
  EXPECT_EQ(*v.Publish(Msg("t", "s.77.x")).value, 1u);
  EXPECT_EQ(v.FindQueue("q77")->message_count(), 1u);
  v.QueueUnbind("q77", "t", "s.77.*", {}, c);
  EXPECT_EQ(*v.Publish(Msg("t", "s.77.x")).value, 0u) << "index follows unbind";
  EXPECT_EQ(*v.QueueDelete("q1234", false, false, c).value, 1u);
  EXPECT_EQ(*v.Publish(Msg("amq.direct", "k1234")).value, 0u) << "index follows queue delete";
}

// The entries of definitions.json's list `key`, as a sorted set of their one-line texts.
std::multiset<std::string> Entries(const nlohmann::json& doc, const char* key) {
  std::multiset<std::string> out;
  for (const auto& e : doc.at(key)) out.insert(e.dump());
  return out;
}

TEST(Definitions, ExportFollowsEveryChangeAndRoundTrips) {
  Broker broker;
  Vhost& v = *broker.FindVhost("/");
  const ConnectionId conn(1);
  const amqp::FieldTable none;
  const amqp::FieldTable prio{{"x-max-priority", amqp::FieldValue(int32_t{5})}};
  ASSERT_FALSE(v.ExchangeDeclare("dx", "topic", false, true, false, false, none));
  ASSERT_FALSE(v.ExchangeDeclare("dx2", "direct", false, true, false, false, none));
  ASSERT_FALSE(v.ExchangeDeclare("tx", "direct", false, false, false, false, none));
  ASSERT_TRUE(v.QueueDeclare("dq", false, true, false, false, prio, conn).ok());
  ASSERT_TRUE(v.QueueDeclare("gone", false, true, false, false, none, conn).ok());
  ASSERT_TRUE(v.QueueDeclare("tq", false, false, false, false, none, conn).ok());
  ASSERT_TRUE(v.QueueDeclare("xq", false, true, true, false, none, conn).ok());
  ASSERT_FALSE(v.QueueBind("dq", "dx", "a.*", none, conn));
  ASSERT_FALSE(v.QueueBind("gone", "dx", "g", none, conn));
  ASSERT_FALSE(v.QueueBind("tq", "dx", "t", none, conn));
  ASSERT_FALSE(v.QueueBind("xq", "dx", "x", none, conn));
  ASSERT_FALSE(v.QueueBind("dq", "amq.direct", "k", none, conn));
  ASSERT_FALSE(v.ExchangeBind("dx", "dx2", "e2e", none));
  ASSERT_FALSE(v.ExchangeBind("dx", "tx", "no", none));
  (void)broker.ExportDefinitions();  // renders and keeps every entry's text
  // Changes after the first export: the kept texts must not outlive what they show.
  ASSERT_TRUE(v.QueueDelete("gone", false, false, conn).ok());
  ASSERT_TRUE(v.QueueDeclare("gone", false, true, false, false, prio, conn).ok());
  ASSERT_FALSE(v.QueueUnbind("dq", "dx", "a.*", none, conn));
  ASSERT_FALSE(v.QueueBind("dq", "dx", "b.#", none, conn));

  const std::string text = broker.ExportDefinitions();
  auto doc = nlohmann::json::parse(text);
  EXPECT_EQ(doc["warren_format"], 1);
  EXPECT_EQ(doc["vhosts"], nlohmann::json::parse(R"([{"name": "/"}])"));
  for (const char* empty : {"users", "permissions", "topic_permissions", "parameters",
                            "global_parameters", "policies"}) {
    EXPECT_EQ(doc[empty], nlohmann::json::array()) << empty;
  }
  auto q = [](const char* name, const char* args) {
    return nlohmann::json{{"name", name},
                          {"vhost", "/"},
                          {"durable", true},
                          {"auto_delete", false},
                          {"arguments", nlohmann::json::parse(args)}}
        .dump();
  };
  EXPECT_EQ(Entries(doc, "queues"), (std::multiset<std::string>{
                                        q("dq", R"({"x-max-priority": 5})"),
                                        q("gone", R"({"x-max-priority": 5})"),
                                    }));
  std::multiset<std::string> exchange_names;
  for (const auto& e : doc["exchanges"]) exchange_names.insert(e["name"].get<std::string>());
  EXPECT_EQ(exchange_names, (std::multiset<std::string>{"dx", "dx2"}));
  auto b = [](const char* source, const char* dest, const char* type, const char* key) {
    return nlohmann::json{{"source", source},    {"vhost", "/"},
                          {"destination", dest}, {"destination_type", type},
                          {"routing_key", key},  {"arguments", nlohmann::json::object()}}
        .dump();
  };
  EXPECT_EQ(Entries(doc, "bindings"), (std::multiset<std::string>{
                                          b("dx", "dq", "queue", "b.#"),
                                          b("amq.direct", "dq", "queue", "k"),
                                          b("dx2", "dx", "exchange", "e2e"),
                                      }))
      << text;

  // What was exported comes back as it was.
  Broker restored;
  std::vector<std::string> warnings;
  restored.FindVhost("/")->ImportDefinitions(doc, warnings);
  EXPECT_TRUE(warnings.empty());
  auto again = nlohmann::json::parse(restored.ExportDefinitions());
  for (const char* key : {"queues", "exchanges", "bindings"}) {
    EXPECT_EQ(Entries(again, key), Entries(doc, key)) << key;
  }
}

}  // namespace
}  // namespace warren::broker
