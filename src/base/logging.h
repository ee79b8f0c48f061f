#pragma once
// Named loggers (style.md, practice 23). Each module gets its own spdlog logger, e.g.
// `GetLogger("storage")`; all of them write to stderr with the level set by --log-level.
// Thread-safe. Loggers live for the whole process.

#include <spdlog/spdlog.h>

#include <memory>
#include <string_view>

namespace warren {

std::shared_ptr<spdlog::logger> GetLogger(std::string_view name);

// Sets the level of every existing and future logger. Returns false for an unknown level name
// (accepted: trace, debug, info, warning, warn, error, critical, off).
bool SetLogLevel(std::string_view level);

}  // namespace warren
