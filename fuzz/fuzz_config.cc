// Fuzzes the TOML configuration file (--config, docs/configuration.md): any bytes give either a
// configuration or a one-line error, never a crash or an exception.
#include <cstddef>
#include <cstdint>
#include <string>

#include "config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace warren;
  const std::string text(reinterpret_cast<const char*>(data), size);
  config::Config cfg;
  const std::string error = config::ApplyToml(text, "fuzz.toml", cfg);
  if (error.find('\n') != std::string::npos) __builtin_trap();  // errors are one line
  return 0;
}
