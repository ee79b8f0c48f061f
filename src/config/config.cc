#include "config/config.h"

#include <toml++/toml.h>

#include <CLI/CLI.hpp>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>

namespace warren::config {

namespace {

enum class Kind { kInt, kString };

// One configuration key: its TOML path, optional flag, text, default and bounds.
struct Key {
  const char* path;  // "limits.frame_max"
  const char* flag;  // "--frame-max" or nullptr
  const char* description;
  Kind kind;
  int64_t min = 0;
  int64_t max = 0;
  bool restart = true;  // every key needs a restart for now; none is live-reloadable yet
  std::function<int64_t(const Config&)> get_int = nullptr;
  std::function<void(Config&, int64_t)> set_int = nullptr;
  std::function<std::string(const Config&)> get_str = nullptr;
  std::function<void(Config&, std::string)> set_str = nullptr;
  std::function<std::string(const std::string&)> check_str = nullptr;  // "" if ok
};

// A fraction in (0, 1], written as a string ("0.4") so the key table stays int/string.
std::string CheckFraction(const std::string& v) {
  size_t used = 0;
  double d = 0;
  try {
    d = std::stod(v, &used);
  } catch (...) {
    used = 0;
  }
  if (used == 0 || used != v.size() || !(d > 0.0) || d > 1.0) {
    return "must be a number in (0, 1], got '" + v + "'";
  }
  return "";
}

std::string FormatFraction(double d) {
  std::ostringstream os;
  os << d;
  return os.str();
}

std::string CheckLogLevel(const std::string& v) {
  for (const char* l : {"trace", "debug", "info", "warning", "warn", "error", "critical", "off"}) {
    if (v == l) return "";
  }
  return "must be one of trace, debug, info, warning, error, critical, off";
}

#define INT_KEY(field)                                                                             \
  [](const Config& c) { return static_cast<int64_t>(c.field); },                                   \
      [](Config& c, int64_t v) { c.field = static_cast<decltype(c.field)>(v); }, nullptr, nullptr, \
      nullptr
#define STR_KEY(field, check)                                \
  nullptr, nullptr, [](const Config& c) { return c.field; }, \
      [](Config& c, std::string v) { c.field = std::move(v); }, check

const std::vector<Key>& Keys() {
  static const std::vector<Key> keys = {
      {"amqp.bind", "--bind", "Address the AMQP listener binds to.", Kind::kString, 0, 0, true,
       STR_KEY(bind, nullptr)},
      {"amqp.port", "--amqp-port",
       "AMQP listener port. 0 picks a free port and logs it (\"amqp listening on ...\").",
       Kind::kInt, 0, 65535, true, INT_KEY(amqp_port)},
      {"storage.data_dir", "--data-dir", "Folder for Warren's files; created if missing.",
       Kind::kString, 0, 0, true, STR_KEY(data_dir, nullptr)},
      {"storage.disk_free_limit", nullptr,
       "Free bytes on the data dir's filesystem below which the disk alarm blocks publishers "
       "(connection.blocked) until space returns. Checked every second.",
       Kind::kInt, 0, int64_t{1} << 60, true, INT_KEY(disk_free_limit)},
      {"storage.segment_bytes", nullptr,
       "Size at which a durable queue's segment file is closed and a new one started (bytes).",
       Kind::kInt, 4096, 1073741824, true, INT_KEY(segment_bytes)},
      {"storage.queue_memory_bytes", nullptr,
       "Bytes of ready messages a queue keeps in memory (bodies plus about 260 bytes each); "
       "beyond this new messages are paged out to disk (under paging/) and read back in order "
       "(docs/queues.md, Paging). Priority queues keep persistent positions only instead.",
       Kind::kInt, 0, int64_t{1} << 40, true, INT_KEY(queue_memory_bytes)},
      {"log.level", "--log-level",
       "Log level: trace, debug, info, warning, error, critical, off. Logs go to stderr.",
       Kind::kString, 0, 0, true, STR_KEY(log_level, CheckLogLevel)},
      {"limits.frame_max", "--frame-max",
       "Largest frame the server accepts and offers in connection.tune (bytes).", Kind::kInt, 4096,
       1048576, true, INT_KEY(frame_max)},
      {"limits.channel_max", "--channel-max",
       "Most channels per connection, offered in connection.tune.", Kind::kInt, 1, 65535, true,
       INT_KEY(channel_max)},
      {"limits.heartbeat", nullptr,
       "Heartbeat interval offered in connection.tune (seconds; 0 disables).", Kind::kInt, 0, 65535,
       true, INT_KEY(heartbeat)},
      {"limits.max_message_size", "--max-message-size",
       "Largest message body accepted (bytes); larger publishes get 406 PRECONDITION_FAILED on "
       "the channel (RabbitMQ 3.10's default: 128 MiB).",
       Kind::kInt, 1, 536870912, true, INT_KEY(max_message_size)},
      {"limits.max_connections", "--max-connections",
       "Most concurrent client connections (0 = unlimited); extra ones are accepted and closed "
       "at once, before connection.start. Also bounded by the open-file limit (logged at start).",
       Kind::kInt, 0, 10000000, true, INT_KEY(max_connections)},
      {"limits.max_queues", "--max-queues",
       "Most queues per vhost (0 = unlimited); declaring one more gets 406 PRECONDITION_FAILED "
       "on the channel.",
       Kind::kInt, 0, 100000000, true, INT_KEY(max_queues)},
      {"limits.handshake_timeout", "--handshake-timeout",
       "Milliseconds a client has from connecting to connection.open-ok; a slower or stalled "
       "one is disconnected.",
       Kind::kInt, 100, 3600000, true, INT_KEY(handshake_timeout_ms)},
      {"limits.consumer_timeout", "--consumer-timeout",
       "Milliseconds a delivery may stay unacknowledged before its channel is closed with 406 "
       "PRECONDITION_FAILED (0 = never). Checked every second.",
       Kind::kInt, 0, 2147483647, true, INT_KEY(consumer_timeout_ms)},
      {"limits.write_buffer_bytes", "--write-buffer-bytes",
       "Bytes waiting to be written to one connection above which its consumers get no more "
       "deliveries (they wait in the queue) and its socket is not read, until it drains.",
       Kind::kInt, 65536, int64_t{1} << 34, true, INT_KEY(write_buffer_bytes)},
      {"memory.high_watermark", nullptr,
       "Fraction of total RAM (a string, \"0.4\") of resident memory above which the memory "
       "alarm blocks publishers (connection.blocked \"low on memory\") and queues page their "
       "messages out to disk. Checked every 100 ms.",
       Kind::kString, 0, 0, true, nullptr, nullptr,
       [](const Config& c) { return FormatFraction(c.memory_high_watermark); },
       [](Config& c, std::string v) { c.memory_high_watermark = std::stod(v); }, CheckFraction},
      {"memory.high_watermark_bytes", "--memory-high-watermark-bytes",
       "Absolute memory high-water mark in bytes; when > 0 it replaces memory.high_watermark.",
       Kind::kInt, 0, int64_t{1} << 50, true, INT_KEY(memory_high_watermark_bytes)},
      {"server.shards", nullptr,
       "I/O threads. Only 1 is supported today (docs/decisions/0001-one-shard-first.md).",
       Kind::kInt, 1, 1, true, INT_KEY(shards)},
  };
  return keys;
}

std::string Range(const Key& k) {
  return "[" + std::to_string(k.min) + ", " + std::to_string(k.max) + "]";
}

// Validates and sets one integer; "" on success.
std::string SetInt(const Key& k, int64_t v, Config& c) {
  if (v < k.min || v > k.max) {
    return "key '" + std::string(k.path) + "' = " + std::to_string(v) + " is out of range " +
           Range(k);
  }
  k.set_int(c, v);
  return "";
}

std::string SetStr(const Key& k, std::string v, Config& c) {
  if (k.check_str) {
    std::string why = k.check_str(v);
    if (!why.empty()) return "key '" + std::string(k.path) + "' " + why;
  }
  k.set_str(c, std::move(v));
  return "";
}

std::string ApplyNode(const toml::table& table, const std::string& prefix,
                      const std::string& source, Config& c) {
  for (const auto& [name, node] : table) {
    std::string path =
        prefix.empty() ? std::string(name.str()) : prefix + "." + std::string(name.str());
    if (const toml::table* sub = node.as_table()) {
      std::string err = ApplyNode(*sub, path, source, c);
      if (!err.empty()) return err;
      continue;
    }
    const Key* key = nullptr;
    for (const Key& k : Keys()) {
      if (path == k.path) key = &k;
    }
    if (key == nullptr) return "unknown key '" + path + "' in " + source;
    if (key->kind == Kind::kInt) {
      // Test the type first: toml++'s value<int64_t>() of a float out of int64_t's range is
      // undefined behaviour (found by fuzz_config under UBSan).
      if (!node.is_integer()) return "key '" + path + "' in " + source + " must be an integer";
      auto v = node.value<int64_t>();
      if (!v) return "key '" + path + "' in " + source + " must be an integer";
      std::string err = SetInt(*key, *v, c);
      if (!err.empty()) return err + " in " + source;
    } else {
      if (!node.is_string()) return "key '" + path + "' in " + source + " must be a string";
      std::string err = SetStr(*key, *node.value<std::string>(), c);
      if (!err.empty()) return err + " in " + source;
    }
  }
  return "";
}

}  // namespace

// Errors are one line: toml++ quotes the character it saw and a quoted key may hold anything,
// line breaks included (found by fuzz_config).
static std::string OneLine(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += '?';
    } else {
      out += c;
    }
  }
  return out;
}

std::string ApplyToml(const std::string& toml_text, const std::string& source, Config& config) {
  // Debian's toml++ is built with exceptions: parse errors arrive as toml::parse_error.
  // Start-up code, so exceptions are allowed here (style.md, practice 10).
  toml::table parsed;
  try {
    parsed = toml::parse(toml_text, source);
  } catch (const toml::parse_error& err) {
    return OneLine("cannot parse " + source + " at line " +
                   std::to_string(err.source().begin.line) + ": " + std::string(err.description()));
  }
  return OneLine(ApplyNode(parsed, "", source, config));
}

Parsed ParseCommandLine(int argc, const char* const* argv) {
  CLI::App app{"warrend: the Warren message broker (AMQP 0-9-1, RabbitMQ-compatible)", "warrend"};
  std::string config_file;
  bool print_docs = false;
  app.add_option("--config", config_file, "TOML configuration file (see docs/configuration.md)");
  app.add_flag("--print-config-docs", print_docs, "Print the configuration reference (Markdown)");
  // Flags are read as strings and validated by the key declarations, so a bad value gets the
  // same one-line message as in the file.
  std::vector<std::pair<const Key*, std::string>> flag_values;
  std::vector<std::string> storage(Keys().size());
  std::vector<CLI::Option*> options(Keys().size(), nullptr);
  for (size_t i = 0; i < Keys().size(); ++i) {
    const Key& k = Keys()[i];
    if (k.flag == nullptr) continue;
    options[i] = app.add_option(k.flag, storage[i], k.description);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    return Exit{0, app.help()};
  } catch (const CLI::ParseError& e) {
    return Exit{2, std::string("warrend: ") + e.what() + " (see warrend --help)"};
  }
  if (print_docs) return Exit{0, ConfigDocsMarkdown()};

  Config c;
  if (!config_file.empty()) {
    std::ifstream in(config_file);
    if (!in) return Exit{2, "warrend: config error: cannot read config file '" + config_file + "'"};
    std::stringstream ss;
    ss << in.rdbuf();
    std::string err = ApplyToml(ss.str(), config_file, c);
    if (!err.empty()) return Exit{2, "warrend: config error: " + err};
  }
  for (size_t i = 0; i < Keys().size(); ++i) {
    const Key& k = Keys()[i];
    if (options[i] == nullptr || options[i]->count() == 0) continue;
    std::string err;
    if (k.kind == Kind::kInt) {
      int64_t v = 0;
      size_t used = 0;
      try {
        v = std::stoll(storage[i], &used);
      } catch (...) {
        used = 0;
      }
      if (used == 0 || used != storage[i].size()) {
        return Exit{
            2, std::string("warrend: ") + k.flag + " must be an integer, got '" + storage[i] + "'"};
      }
      err = SetInt(k, v, c);
    } else {
      err = SetStr(k, storage[i], c);
    }
    if (!err.empty()) return Exit{2, std::string("warrend: ") + k.flag + ": " + err};
  }
  return Run{c};
}

std::string ConfigDocsMarkdown() {
  Config defaults;
  std::string out =
      "# Configuration\n\n"
      "Generated by `warrend --print-config-docs` from the key declarations in\n"
      "`src/config/config.cc`; a unit test fails when this page and the code differ.\n\n"
      "Warren reads its defaults, then the TOML file given with `--config FILE`, then the\n"
      "command-line flags; a later source wins. An unknown key, a value of the wrong type or\n"
      "out of range stops start-up with one line naming the key, for example\n"
      "`warrend: config error: unknown key 'limits.frame_mxa' in warren.toml`.\n\n"
      "Every key needs a restart to change.\n\n"
      "| key | flag | default | range | meaning |\n"
      "| --- | --- | --- | --- | --- |\n";
  for (const Key& k : Keys()) {
    std::string def = k.kind == Kind::kInt ? std::to_string(k.get_int(defaults))
                                           : "\"" + k.get_str(defaults) + "\"";
    std::string range = k.kind == Kind::kInt ? Range(k) : "";
    out += "| `" + std::string(k.path) + "` | " +
           (k.flag ? "`" + std::string(k.flag) + "`" : std::string("")) + " | `" + def + "` | " +
           range + " | " + k.description + " |\n";
  }
  out +=
      "\nExample `warren.toml`:\n\n```toml\n[amqp]\nport = 5672\n\n[storage]\n"
      "data_dir = \"/var/lib/warren\"\n\n[limits]\nframe_max = 131072\nheartbeat = 30\n```\n";
  return out;
}

}  // namespace warren::config
