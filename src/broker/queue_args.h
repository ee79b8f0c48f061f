#pragma once
// Queue arguments (queue.declare `x-*` keys) parsed and validated once into QueueSettings, with
// RabbitMQ 3.10's PRECONDITION_FAILED explanations for bad values and types.
//
// The same settings can come from a policy: ParseQueueSettings takes a policy definition map
// (RabbitMQ's policy keys, "message-ttl", "max-length", ...) and merges it as RabbitMQ does for
// classic queues: for numeric limits the lower of argument and policy wins, otherwise the
// argument. Policies are not implemented yet; callers pass an empty map.
//
// Value types; no thread affinity.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "amqp/codec/field_table.h"

namespace warren::broker {

enum class Overflow : uint8_t { kDropHead, kRejectPublish, kRejectPublishDlx };

// Bits of QueueSettings::Features(): a queue whose word is 0 takes the plain path.
enum QueueFeature : uint32_t {
  kFeatureTtl = 1u << 0,         // x-message-ttl
  kFeatureLimit = 1u << 1,       // x-max-length or x-max-length-bytes
  kFeaturePriority = 1u << 2,    // x-max-priority >= 1
  kFeatureDeadLetter = 1u << 3,  // x-dead-letter-exchange
  kFeatureExpires = 1u << 4,     // x-expires
};

// RabbitMQ 3.10's upper bound for x-message-ttl, x-expires and `expiration`: ten years in ms
// (measured against it).
inline constexpr uint64_t kMaxExpiryMs = 315360000000u;

struct QueueSettings {
  std::optional<uint64_t> message_ttl_ms;
  std::optional<uint64_t> expires_ms;
  std::optional<uint64_t> max_length;
  std::optional<uint64_t> max_length_bytes;  // body bytes of ready messages
  uint8_t max_priority = 0;                  // 0: not a priority queue
  Overflow overflow = Overflow::kDropHead;
  std::optional<std::string> dead_letter_exchange;
  std::optional<std::string> dead_letter_routing_key;
  bool single_active_consumer = false;

  uint32_t Features() const;
};

struct SettingsResult {
  std::optional<QueueSettings> settings;
  std::optional<std::string> error;  // without "PRECONDITION_FAILED - "
};

// `queue_text` is "queue 'q' in vhost '/'" and `queue_name` the bare name (RabbitMQ names the
// queue differently in the DLX type error).
SettingsResult ParseQueueSettings(const amqp::FieldTable& args, const std::string& queue_text,
                                  const std::string& queue_name, std::string_view vhost,
                                  const amqp::FieldTable& policy = {});

// The `expiration` property: a string of a non-negative integer of ms up to kMaxExpiryMs.
// Returns RabbitMQ's explanation on a bad value, e.g. "invalid expiration 'abc': no_integer".
std::optional<std::string> ParseExpiration(std::string_view s, uint64_t& ms);

std::string_view OverflowName(Overflow o);

}  // namespace warren::broker
