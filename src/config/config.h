#pragma once
// Warren's configuration: one immutable, validated struct built once at start-up from
// defaults, then warren.toml (--config), then command-line flags (style.md, practice 15).
//
// Every key is declared once in config.cc (name, description, default, bounds); that
// declaration drives TOML parsing, flag parsing, validation and docs/configuration.md
// (`warrend --print-config-docs`), so the three cannot drift. Only this module touches toml++.

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace warren::config {

struct Config {
  // [amqp]
  std::string bind = "0.0.0.0";
  uint16_t amqp_port = 5672;
  // [storage]
  std::string data_dir = "./data";
  uint64_t segment_bytes = 8u << 20;
  uint64_t disk_free_limit = 50'000'000;
  uint64_t queue_memory_bytes = 64u << 20;
  // [log]
  std::string log_level = "info";
  // [limits]
  uint32_t frame_max = 131072;
  uint16_t channel_max = 2047;
  uint16_t heartbeat = 60;
  uint64_t max_message_size = 134217728;
  uint32_t max_connections = 0;
  uint32_t max_queues = 0;                   // per vhost; 0 = unlimited
  uint32_t handshake_timeout_ms = 10'000;    // RabbitMQ's handshake_timeout
  uint32_t consumer_timeout_ms = 1'800'000;  // RabbitMQ's consumer_timeout; 0 = off
  uint64_t write_buffer_bytes = 8u << 20;    // per connection, before dispatch pauses
  // [memory]
  double memory_high_watermark = 0.4;        // of total RAM (vm_memory_high_watermark.relative)
  uint64_t memory_high_watermark_bytes = 0;  // absolute; overrides the fraction when > 0
  // [server]
  uint32_t shards = 1;
};

// What start-up should do after reading the command line.
struct Run {
  Config config;
};
struct Exit {
  int code = 0;         // 0 after --help / --print-config-docs, 2 after a usage or config error
  std::string message;  // printed as is (stdout for code 0, stderr otherwise)
};
using Parsed = std::variant<Run, Exit>;

// Parses flags (and the TOML file named by --config). Errors are one line naming the key or
// flag. Never throws.
Parsed ParseCommandLine(int argc, const char* const* argv);

// Applies a TOML document to `config`. On error returns a one-line message ("" on success).
// `source` names the document in messages (a file name).
std::string ApplyToml(const std::string& toml_text, const std::string& source, Config& config);

// docs/configuration.md, generated from the key declarations.
std::string ConfigDocsMarkdown();

}  // namespace warren::config
