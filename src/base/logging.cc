#include "base/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <mutex>
#include <string>

namespace warren {

namespace {
std::mutex mu;
spdlog::level::level_enum current_level = spdlog::level::info;
}  // namespace

std::shared_ptr<spdlog::logger> GetLogger(std::string_view name) {
  std::string key(name);
  if (auto existing = spdlog::get(key)) return existing;
  std::lock_guard lock(mu);
  if (auto existing = spdlog::get(key)) return existing;
  auto logger = spdlog::stderr_color_mt(key);
  logger->set_level(current_level);
  logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ [%n] %v");
  return logger;
}

bool SetLogLevel(std::string_view level) {
  std::string l(level);
  if (l == "warn") l = "warning";
  auto parsed = spdlog::level::from_str(l);
  if (parsed == spdlog::level::off && l != "off") return false;
  std::lock_guard lock(mu);
  current_level = parsed;
  spdlog::set_level(parsed);
  spdlog::apply_all([&](const std::shared_ptr<spdlog::logger>& lg) { lg->set_level(parsed); });
  return true;
}

}  // namespace warren
