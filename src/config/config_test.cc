#include "config/config.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace warren::config {
namespace {

Parsed Parse(std::vector<const char*> args) {
  args.insert(args.begin(), "warrend");
  return ParseCommandLine(static_cast<int>(args.size()), args.data());
}

std::string ErrorOf(const Parsed& p) {
  const Exit* e = std::get_if<Exit>(&p);
  return e ? e->message : "";
}

TEST(Config, DefaultsMatchRabbitMq) {
  auto p = Parse({});
  const Config& c = std::get<config::Run>(p).config;
  EXPECT_EQ(c.amqp_port, 5672);
  EXPECT_EQ(c.data_dir, "./data");
  EXPECT_EQ(c.frame_max, 131072u);
  EXPECT_EQ(c.channel_max, 2047);
  EXPECT_EQ(c.heartbeat, 60);
  EXPECT_EQ(c.max_message_size, 134217728u);
  EXPECT_EQ(c.log_level, "info");
}

TEST(Config, ResourceLimitDefaultsMatchRabbitMq) {
  auto p = Parse({});
  const Config& c = std::get<config::Run>(p).config;
  EXPECT_EQ(c.handshake_timeout_ms, 10000u);
  EXPECT_EQ(c.consumer_timeout_ms, 1800000u);
  EXPECT_DOUBLE_EQ(c.memory_high_watermark, 0.4);
  EXPECT_EQ(c.memory_high_watermark_bytes, 0u);
  EXPECT_EQ(c.max_queues, 0u);
}

TEST(Config, MemoryHighWatermarkIsAFraction) {
  Config c;
  EXPECT_EQ(ApplyToml("[memory]\nhigh_watermark = \"0.25\"\n", "w.toml", c), "");
  EXPECT_DOUBLE_EQ(c.memory_high_watermark, 0.25);
  EXPECT_EQ(ApplyToml("[memory]\nhigh_watermark = \"1.5\"\n", "w.toml", c),
            "key 'memory.high_watermark' must be a number in (0, 1], got '1.5' in w.toml");
  EXPECT_EQ(ApplyToml("[memory]\nhigh_watermark = \"0.4x\"\n", "w.toml", c),
            "key 'memory.high_watermark' must be a number in (0, 1], got '0.4x' in w.toml");
  auto p = Parse({"--memory-high-watermark-bytes", "1000000", "--consumer-timeout", "0"});
  const Config& f = std::get<config::Run>(p).config;
  EXPECT_EQ(f.memory_high_watermark_bytes, 1000000u);
  EXPECT_EQ(f.consumer_timeout_ms, 0u);
}

TEST(Config, FlagsOverride) {
  auto p = Parse({"--amqp-port", "0", "--data-dir", "/tmp/x", "--log-level", "debug"});
  const Config& c = std::get<config::Run>(p).config;
  EXPECT_EQ(c.amqp_port, 0);
  EXPECT_EQ(c.data_dir, "/tmp/x");
  EXPECT_EQ(c.log_level, "debug");
}

TEST(Config, TomlAppliesAndFlagsWin) {
  std::string path = ::testing::TempDir() + "/warren_cfg_test.toml";
  std::ofstream(path) << "[amqp]\nport = 5999\n[limits]\nheartbeat = 10\n";
  auto p = Parse({"--config", path.c_str(), "--amqp-port", "6000"});
  const Config& c = std::get<config::Run>(p).config;
  EXPECT_EQ(c.amqp_port, 6000);
  EXPECT_EQ(c.heartbeat, 10);
}

TEST(Config, OneLineErrorsNameTheKey) {
  Config c;
  EXPECT_EQ(ApplyToml("[limits]\nframe_mxa = 1\n", "warren.toml", c),
            "unknown key 'limits.frame_mxa' in warren.toml");
  EXPECT_EQ(ApplyToml("[limits]\nframe_max = \"big\"\n", "warren.toml", c),
            "key 'limits.frame_max' in warren.toml must be an integer");
  EXPECT_EQ(ApplyToml("[limits]\nframe_max = 100\n", "warren.toml", c),
            "key 'limits.frame_max' = 100 is out of range [4096, 1048576] in warren.toml");
  EXPECT_EQ(ApplyToml("[log]\nlevel = \"loud\"\n", "w.toml", c),
            "key 'log.level' must be one of trace, debug, info, warning, error, critical, off "
            "in w.toml");
  EXPECT_NE(ApplyToml("[amqp\nport=1", "w.toml", c).find("cannot parse w.toml at line 1"),
            std::string::npos);
  EXPECT_EQ(c.frame_max, 131072u) << "a refused value must not be applied";
}

TEST(Config, BadFlagsAndFiles) {
  std::string e = ErrorOf(Parse({"--no-such-flag"}));
  EXPECT_NE(e.find("--no-such-flag"), std::string::npos) << e;
  EXPECT_EQ(e.find('\n'), std::string::npos) << "one line";
  EXPECT_EQ(std::get<Exit>(Parse({"--no-such-flag"})).code, 2);
  EXPECT_EQ(ErrorOf(Parse({"--amqp-port", "70000"})),
            "warrend: --amqp-port: key 'amqp.port' = 70000 is out of range [0, 65535]");
  EXPECT_EQ(ErrorOf(Parse({"--amqp-port", "12ab"})),
            "warrend: --amqp-port must be an integer, got '12ab'");
  EXPECT_EQ(ErrorOf(Parse({"--config", "/nonexistent/warren.toml"})),
            "warrend: config error: cannot read config file '/nonexistent/warren.toml'");
}

TEST(Config, HelpExitsZero) {
  auto p = Parse({"--help"});
  EXPECT_EQ(std::get<Exit>(p).code, 0);
  EXPECT_NE(std::get<Exit>(p).message.find("--amqp-port"), std::string::npos);
}

// docs/configuration.md is generated from the declarations; it must not drift.
TEST(Config, DocsPageIsUpToDate) {
  std::ifstream in(std::string(WARREN_SOURCE_DIR) + "/docs/configuration.md");
  ASSERT_TRUE(in) << "docs/configuration.md missing";
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), ConfigDocsMarkdown())
      << "regenerate: build/release/src/app/warrend --print-config-docs > docs/configuration.md";
}

// Found by fuzz_config: toml++ quoted the line break it saw, and the "one-line" error had two.
TEST(Config, ParseErrorsAreOneLine) {
  Config c;
  const std::string error = ApplyToml("[pb]\nipO= n\n[ste]\n", "bad.toml", c);
  EXPECT_NE(error.find("cannot parse bad.toml at line 2"), std::string::npos) << error;
  EXPECT_EQ(error.find('\n'), std::string::npos) << error;
}

// Found by fuzz_config under UBSan: a float too large for int64_t given for an integer key.
TEST(Config, AHugeFloatForAnIntegerKeyIsAnError) {
  Config c;
  EXPECT_EQ(ApplyToml("[limits]\nframe_max = 6.3e27\n", "f.toml", c),
            "key 'limits.frame_max' in f.toml must be an integer");
  EXPECT_EQ(ApplyToml("\"a\\nb\" = 1\n", "k.toml", c).find('\n'), std::string::npos);
}

}  // namespace
}  // namespace warren::config
