#include "broker/queue_args.h"

#include <algorithm>
#include <charconv>

namespace warren::broker {

uint32_t QueueSettings::Features() const {
  uint32_t f = 0;
  if (message_ttl_ms) f |= kFeatureTtl;
  if (max_length || max_length_bytes) f |= kFeatureLimit;
  if (max_priority > 0) f |= kFeaturePriority;
  if (dead_letter_exchange) f |= kFeatureDeadLetter;
  if (expires_ms) f |= kFeatureExpires;
  return f;
}

std::string_view OverflowName(Overflow o) {
  switch (o) {
    case Overflow::kDropHead:
      return "drop-head";
    case Overflow::kRejectPublish:
      return "reject-publish";
    case Overflow::kRejectPublishDlx:
      return "reject-publish-dlx";
  }
  return "drop-head";
}

namespace {

enum class IntRule { kNonNegative, kPositive, kTtl, kPriority };

// RabbitMQ's check_*_arg explanations: "expected integer, got longstr", {value_negative,-1},
// {value_zero,0}, {value_too_large,N}, {max_value_exceeded,N}.
std::optional<std::string> CheckInt(const amqp::FieldValue& v, IntRule rule, uint64_t& out) {
  auto i = v.AsInt();
  if (!i) return "\"expected integer, got " + std::string(v.TypeName()) + "\"";
  const int64_t n = *i;
  if (n < 0) return "{value_negative," + std::to_string(n) + "}";
  if (rule == IntRule::kPositive && n == 0) return std::string("{value_zero,0}");
  if ((rule == IntRule::kTtl || rule == IntRule::kPositive) &&
      static_cast<uint64_t>(n) > kMaxExpiryMs) {
    return "{value_too_large," + std::to_string(n) + "}";
  }
  if (rule == IntRule::kPriority && n > 255) {
    return "{max_value_exceeded," + std::to_string(n) + "}";
  }
  out = static_cast<uint64_t>(n);
  return std::nullopt;
}

std::optional<uint64_t> Lower(std::optional<uint64_t> a, std::optional<uint64_t> b) {
  if (a && b) return std::min(*a, *b);
  return a ? a : b;
}

// Policy values were validated when the policy was set; bad ones are ignored here.
void MergePolicy(QueueSettings& s, const amqp::FieldTable& policy) {
  auto num = [&](const char* key) -> std::optional<uint64_t> {
    const amqp::FieldValue* v = amqp::Find(policy, key);
    if (v == nullptr) return std::nullopt;
    auto i = v->AsInt();
    if (!i || *i < 0) return std::nullopt;
    return static_cast<uint64_t>(*i);
  };
  auto str = [&](const char* key) -> const std::string* {
    const amqp::FieldValue* v = amqp::Find(policy, key);
    return v ? v->AsString() : nullptr;
  };
  s.message_ttl_ms = Lower(s.message_ttl_ms, num("message-ttl"));
  auto expires = num("expires");
  s.expires_ms = Lower(s.expires_ms, expires && *expires > 0 ? expires : std::nullopt);
  s.max_length = Lower(s.max_length, num("max-length"));
  s.max_length_bytes = Lower(s.max_length_bytes, num("max-length-bytes"));
  if (!s.dead_letter_exchange) {
    if (const auto* x = str("dead-letter-exchange")) s.dead_letter_exchange = *x;
  }
  if (!s.dead_letter_routing_key) {
    if (const auto* x = str("dead-letter-routing-key")) s.dead_letter_routing_key = *x;
  }
  if (s.max_priority == 0) {
    if (auto p = num("max-priority"); p && *p <= 255) s.max_priority = static_cast<uint8_t>(*p);
  }
}

}  // namespace

SettingsResult ParseQueueSettings(const amqp::FieldTable& args, const std::string& queue_text,
                                  const std::string& queue_name, std::string_view vhost,
                                  const amqp::FieldTable& policy) {
  QueueSettings s;
  auto invalid = [&](std::string_view key, const std::string& why) {
    return SettingsResult{std::nullopt,
                          "invalid arg '" + std::string(key) + "' for " + queue_text + ": " + why};
  };
  // RabbitMQ checks the DLX name's type first (with the exchange permission check).
  if (const auto* v = amqp::Find(args, "x-dead-letter-exchange")) {
    const auto* name = v->AsString();
    if (name == nullptr) {
      return {std::nullopt, "invalid type '" + std::string(v->TypeName()) +
                                "' for arg 'x-dead-letter-exchange' in queue '" + queue_name +
                                "' in vhost '" + std::string(vhost) + "'"};
    }
    s.dead_letter_exchange = *name;
  }
  // Then in RabbitMQ's declare_args() order.
  uint64_t n = 0;
  if (const auto* v = amqp::Find(args, "x-expires")) {
    if (auto e = CheckInt(*v, IntRule::kPositive, n)) return invalid("x-expires", *e);
    s.expires_ms = n;
  }
  if (const auto* v = amqp::Find(args, "x-message-ttl")) {
    if (auto e = CheckInt(*v, IntRule::kTtl, n)) return invalid("x-message-ttl", *e);
    s.message_ttl_ms = n;
  }
  if (const auto* v = amqp::Find(args, "x-dead-letter-routing-key")) {
    const auto* rk = v->AsString();
    if (rk == nullptr) {
      return invalid("x-dead-letter-routing-key",
                     "{unacceptable_type," + std::string(v->TypeName()) + "}");
    }
    if (!s.dead_letter_exchange) {
      return invalid("x-dead-letter-routing-key", "routing_key_but_no_dlx_defined");
    }
    s.dead_letter_routing_key = *rk;
  }
  if (const auto* v = amqp::Find(args, "x-max-length")) {
    if (auto e = CheckInt(*v, IntRule::kNonNegative, n)) return invalid("x-max-length", *e);
    s.max_length = n;
  }
  if (const auto* v = amqp::Find(args, "x-max-length-bytes")) {
    if (auto e = CheckInt(*v, IntRule::kNonNegative, n)) return invalid("x-max-length-bytes", *e);
    s.max_length_bytes = n;
  }
  if (const auto* v = amqp::Find(args, "x-max-priority")) {
    if (auto e = CheckInt(*v, IntRule::kPriority, n)) return invalid("x-max-priority", *e);
    s.max_priority = static_cast<uint8_t>(n);
  }
  if (const auto* v = amqp::Find(args, "x-overflow")) {
    const auto* o = v->AsString();
    if (o == nullptr) {
      return invalid("x-overflow", "{unacceptable_type," + std::string(v->TypeName()) + "}");
    }
    if (*o == "drop-head") {
      s.overflow = Overflow::kDropHead;
    } else if (*o == "reject-publish") {
      s.overflow = Overflow::kRejectPublish;
    } else if (*o == "reject-publish-dlx") {
      s.overflow = Overflow::kRejectPublishDlx;
    } else {
      return invalid("x-overflow", "invalid_overflow");
    }
  }
  if (const auto* v = amqp::Find(args, "x-queue-mode")) {
    const auto* m = v->AsString();
    if (m == nullptr) {
      return invalid("x-queue-mode", "{unacceptable_type," + std::string(v->TypeName()) + "}");
    }
    if (*m != "default" && *m != "lazy") {
      return invalid("x-queue-mode", "\"unsupported queue mode '" + *m + "'\"");
    }
  }
  if (const auto* v = amqp::Find(args, "x-single-active-consumer")) {
    const bool* b = v->get_if<bool>();
    if (b == nullptr) {
      return invalid("x-single-active-consumer",
                     "{unacceptable_type," + std::string(v->TypeName()) + "}");
    }
    s.single_active_consumer = *b;
  }
  MergePolicy(s, policy);
  return {std::move(s), std::nullopt};
}

std::optional<std::string> ParseExpiration(std::string_view s, uint64_t& ms) {
  // Erlang's string:to_integer: an optional sign, then digits; what follows is "leftover".
  const std::string shown = "invalid expiration '" + std::string(s) + "': ";
  size_t i = 0;
  bool negative = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) negative = s[i++] == '-';
  const size_t digits_start = i;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
  if (i == digits_start) return shown + "no_integer";
  if (i != s.size()) return shown + "{leftover_string,\"" + std::string(s.substr(i)) + "\"}";
  const std::string_view digits = s.substr(digits_start, i - digits_start);
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  const bool too_big = ec != std::errc() || v > kMaxExpiryMs;
  std::string number = (negative ? "-" : "") + std::string(digits);
  // Strip leading zeros as Erlang prints the integer.
  const size_t nz = number.find_first_not_of('0', negative ? 1 : 0);
  if (nz == std::string::npos) {
    number = "0";
  } else {
    number.erase(negative ? 1 : 0, nz - (negative ? 1 : 0));
  }
  if (negative && number != "-0" && number != "0") return shown + "{value_negative," + number + "}";
  if (!negative && too_big) return shown + "{value_too_large," + number + "}";
  ms = negative ? 0 : v;
  return std::nullopt;
}

}  // namespace warren::broker
