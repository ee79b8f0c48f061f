// Durable definitions in RabbitMQ's definitions-export JSON (docs/formats/definitions-v1.md),
// and recovery at start.

#include <chrono>
#include <nlohmann/json.hpp>

#include "base/logging.h"
#include "broker/broker.h"

namespace warren::broker {

using nlohmann::json;

namespace {

auto Log() {
  static auto log = GetLogger("broker");
  return log;
}

json ToJson(const amqp::FieldValue& v);

json ToJson(const amqp::FieldTable& t) {
  json o = json::object();
  for (const auto& e : t) o[e.key] = ToJson(e.value);
  return o;
}

json ToJson(const amqp::FieldValue& v) {
  return std::visit(
      [](const auto& x) -> json {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, amqp::Void>) {
          return nullptr;
        } else if constexpr (std::is_same_v<T, bool> || std::is_same_v<T, std::string> ||
                             std::is_arithmetic_v<T>) {
          return x;
        } else if constexpr (std::is_same_v<T, amqp::Decimal>) {
          double d = x.value;
          for (int i = 0; i < x.scale; ++i) d /= 10;
          return d;
        } else if constexpr (std::is_same_v<T, amqp::ByteArray>) {
          return x.bytes;
        } else if constexpr (std::is_same_v<T, amqp::Timestamp>) {
          return x.seconds;
        } else if constexpr (std::is_same_v<T, amqp::FieldArray>) {
          json a = json::array();
          for (const auto& e : x) a.push_back(ToJson(e));
          return a;
        } else {
          return ToJson(static_cast<const amqp::FieldTable&>(x));
        }
      },
      v.v);
}

amqp::FieldValue FromJson(const json& j);

amqp::FieldTable TableFromJson(const json& j) {
  amqp::FieldTable t;
  if (!j.is_object()) return t;
  for (auto it = j.begin(); it != j.end(); ++it) {
    t.push_back(amqp::FieldEntry{it.key(), FromJson(it.value())});
  }
  return t;
}

amqp::FieldValue FromJson(const json& j) {
  if (j.is_boolean()) return amqp::FieldValue(j.get<bool>());
  if (j.is_number_unsigned()) return amqp::FieldValue(static_cast<int64_t>(j.get<uint64_t>()));
  if (j.is_number_integer()) return amqp::FieldValue(j.get<int64_t>());
  if (j.is_number_float()) return amqp::FieldValue(j.get<double>());
  if (j.is_string()) return amqp::FieldValue(j.get<std::string>());
  if (j.is_array()) {
    amqp::FieldArray a;
    for (const auto& e : j) a.push_back(FromJson(e));
    return amqp::FieldValue(std::move(a));
  }
  if (j.is_object()) return amqp::FieldValue(TableFromJson(j));
  return amqp::FieldValue(amqp::Void{});
}

bool ValuesEquivalent(const amqp::FieldValue& a, const amqp::FieldValue& b) {
  auto ai = a.AsInt(), bi = b.AsInt();
  if (ai && bi) return *ai == *bi;
  const auto* ta = a.get_if<amqp::FieldTable>();
  const auto* tb = b.get_if<amqp::FieldTable>();
  if (ta && tb) return TablesEquivalent(*ta, *tb);
  const auto* aa = a.get_if<amqp::FieldArray>();
  const auto* ab = b.get_if<amqp::FieldArray>();
  if (aa && ab) {
    if (aa->size() != ab->size()) return false;
    for (size_t i = 0; i < aa->size(); ++i) {
      if (!ValuesEquivalent((*aa)[i], (*ab)[i])) return false;
    }
    return true;
  }
  return a == b;
}

// A field of an entry, with a warning if it is missing or of the wrong type.
template <typename T>
std::optional<T> Field(const json& entry, const char* key, const char* what,
                       std::vector<std::string>& warnings) {
  auto it = entry.find(key);
  if (it == entry.end()) {
    warnings.push_back(std::string(what) + " without '" + key + "': " + entry.dump());
    return std::nullopt;
  }
  try {
    return it->get<T>();
  } catch (const json::exception&) {
    warnings.push_back(std::string(what) + " with a bad '" + key + "': " + entry.dump());
    return std::nullopt;
  }
}

// One entry of definitions.json on one line. Names are valid UTF-8 (the session refuses others,
// as RabbitMQ does); argument strings may not be, and are written with U+FFFD in place of bad
// bytes rather than not at all.
std::string Render(const json& entry) {
  return entry.dump(-1, ' ', false, json::error_handler_t::replace);
}

// An entity's kept line (`cache`), rendered from make() at the first export.
template <typename Make>
const std::string& Kept(std::string& cache, const Make& make) {
  if (cache.empty()) cache = Render(make());
  return cache;
}

}  // namespace

bool TablesEquivalent(const amqp::FieldTable& a, const amqp::FieldTable& b) {
  if (a.size() != b.size()) return false;
  for (const auto& e : a) {
    const amqp::FieldValue* other = amqp::Find(b, e.key);
    if (other == nullptr || !ValuesEquivalent(e.value, *other)) return false;
  }
  return true;
}

void Vhost::ExportQueues(DefinitionList& out) const {
  // Every entry is rendered once and kept (what it shows never changes while it exists), so a
  // rewrite of the file costs a walk and a copy, not a JSON document per entity: with 10,000
  // durable queues the file is rewritten for each declare (docs/formats/definitions-v1.md).
  for (const auto& [n, q] : queues_) {
    if (!q->durable() || q->owner()) continue;
    // (Structured bindings are captured by name: clang's C++20 cannot capture them.)
    out.Add(Kept(q->definition_text(), [&, &n = n, &q = q] {
      return json{{"name", n},
                  {"vhost", name_},
                  {"durable", true},
                  {"auto_delete", q->auto_delete()},
                  {"arguments", ToJson(q->args())}};
    }));
  }
}

void Vhost::ExportExchanges(DefinitionList& out) const {
  for (const auto& [n, e] : exchanges_) {
    if (!e.durable || n.empty() || n.rfind("amq.", 0) == 0) continue;
    out.Add(Kept(e.definition_text, [&, &n = n, &e = e] {
      return json{{"name", n},
                  {"vhost", name_},
                  {"type", e.type_name},
                  {"durable", true},
                  {"auto_delete", e.auto_delete},
                  {"internal", e.internal},
                  {"arguments", ToJson(e.args)}};
    }));
  }
}

void Vhost::ExportBindings(DefinitionList& out) const {
  // Bindings whose source is predeclared (amq.*) are written too: they are the operator's.
  for (const auto& [n, e] : exchanges_) {
    if (!e.durable || n.empty()) continue;
    for (const Binding& b : e.bindings) {
      if (!IsDurableDestination(b.destination, b.to_exchange)) continue;
      out.Add(Kept(b.definition_text, [&, &n = n] {
        return json{{"source", n},
                    {"vhost", name_},
                    {"destination", b.destination},
                    {"destination_type", b.to_exchange ? "exchange" : "queue"},
                    {"routing_key", b.key},
                    {"arguments", ToJson(b.args)}};
      }));
    }
  }
}

void Vhost::ImportDefinitions(const json& doc, std::vector<std::string>& warnings) {
  loading_ = true;
  const ConnectionId nobody(0);
  // Runs `fn` on each entry of this vhost in list `key`; an entry with a field of the wrong
  // type is skipped with a warning (nlohmann's value() throws on a type mismatch).
  auto each = [&](const char* key, const char* what, const auto& fn) {
    auto it = doc.find(key);
    if (it == doc.end()) return;
    if (!it->is_array()) {
      warnings.push_back(std::string("'") + key + "' is not a list; ignored");
      return;
    }
    for (const json& e : *it) {
      try {
        if (!e.is_object()) {
          warnings.push_back(std::string(what) + " that is not an object: " + e.dump());
          continue;
        }
        if (e.value("vhost", std::string("/")) != name_) continue;
        fn(e);
      } catch (const json::exception& ex) {
        warnings.push_back(std::string(what) + " skipped (" + ex.what() + "): " + e.dump());
      }
    }
  };
  each("exchanges", "exchange", [&](const json& e) {
    auto name = Field<std::string>(e, "name", "exchange", warnings);
    auto type = Field<std::string>(e, "type", "exchange", warnings);
    if (!name || !type) return;
    auto err = ExchangeDeclare(*name, *type, false, e.value("durable", true),
                               e.value("auto_delete", false), e.value("internal", false),
                               TableFromJson(e.value("arguments", json::object())));
    if (err) warnings.push_back("exchange '" + *name + "': " + err->text);
  });
  each("queues", "queue", [&](const json& e) {
    auto name = Field<std::string>(e, "name", "queue", warnings);
    if (!name) return;
    auto r =
        QueueDeclare(*name, false, e.value("durable", true), false, e.value("auto_delete", false),
                     TableFromJson(e.value("arguments", json::object())), nobody);
    if (!r.ok()) warnings.push_back("queue '" + *name + "': " + r.error->text);
  });
  each("bindings", "binding", [&](const json& e) {
    auto source = Field<std::string>(e, "source", "binding", warnings);
    auto dest = Field<std::string>(e, "destination", "binding", warnings);
    if (!source || !dest) return;
    const std::string key = e.value("routing_key", std::string());
    auto args = TableFromJson(e.value("arguments", json::object()));
    std::optional<Error> err;
    if (e.value("destination_type", std::string("queue")) == "exchange") {
      err = ExchangeBind(*dest, *source, key, args);
    } else {
      err = QueueBind(*dest, *source, key, args, nobody);
    }
    if (err) warnings.push_back("binding " + *source + " -> " + *dest + ": " + err->text);
  });
  loading_ = false;
}

void Vhost::RecoverQueues(storage::RecoveryStats& stats, std::set<std::string>& live_dirs) {
  for (auto& [n, q] : queues_) {
    storage::QueueLog* log = q->log();
    if (log == nullptr) continue;
    live_dirs.insert(log->dir());
    auto messages = log->Recover(stats);  // before max_seq(): it is set by Recover
    q->Restore(messages, log->max_seq());
  }
}

void Broker::ExportDefinitions(std::string& out) const {
  out.clear();
  out +=
      "{\n  \"warren_format\": 1,\n  \"product_name\": \"Warren\",\n  \"product_version\": "
      "\"0.1.0\",\n  \"users\": [],\n  \"vhosts\": ";
  DefinitionList vhosts(out);
  for (const auto& [name, vhost] : vhosts_) vhosts.Add(Render(json{{"name", name}}));
  vhosts.Close();
  out +=
      ",\n  \"permissions\": [],\n  \"topic_permissions\": [],\n  \"parameters\": [],\n  "
      "\"global_parameters\": [],\n  \"policies\": [],\n  \"queues\": ";
  DefinitionList queues(out);
  for (const auto& [name, vhost] : vhosts_) vhost->ExportQueues(queues);
  queues.Close();
  out += ",\n  \"exchanges\": ";
  DefinitionList exchanges(out);
  for (const auto& [name, vhost] : vhosts_) vhost->ExportExchanges(exchanges);
  exchanges.Close();
  out += ",\n  \"bindings\": ";
  DefinitionList bindings(out);
  for (const auto& [name, vhost] : vhosts_) vhost->ExportBindings(bindings);
  bindings.Close();
  out += "\n}\n";
}

std::optional<std::string> Broker::Recover() {
  if (store_ == nullptr) return std::nullopt;
  const auto start = std::chrono::steady_clock::now();
  auto text = store_->ReadDefinitions();
  if (!text) return "cannot read definitions.json: " + text.error().message();
  if (text.value()) {
    json doc = json::parse(*text.value(), nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded() || !doc.is_object()) {
      return "definitions.json is not a JSON object; restore it from a backup or move it away";
    }
    std::vector<std::string> warnings;
    for (auto& [name, vhost] : vhosts_) vhost->ImportDefinitions(doc, warnings);
    for (const auto& w : warnings) Log()->warn("definitions.json: {}", w);
  }
  storage::RecoveryStats stats;
  std::set<std::string> live_dirs;
  for (auto& [name, vhost] : vhosts_) vhost->RecoverQueues(stats, live_dirs);
  store_->RemoveOrphans(live_dirs);
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  Log()->info(
      "recovered {} durable queues, {} messages, {} bytes in {:.3f} s ({} torn bytes cut, {} "
      "unreadable segments skipped)",
      live_dirs.size(), stats.messages, stats.bytes, secs, stats.torn_bytes, stats.bad_segments);
  return std::nullopt;
}

}  // namespace warren::broker
