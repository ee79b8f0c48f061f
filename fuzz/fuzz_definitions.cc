// Fuzzes the definitions file read at start (docs/formats/definitions-v1.md): any bytes in
// definitions.json give either a clean start or a one-line error, never a crash; and what was
// loaded, exported and loaded again exports the same entries.
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "base/logging.h"
#include "broker/broker.h"
#include "storage/store.h"

// tmpfs when there is one: fsync there costs nothing, so the fuzzer runs many inputs a second.
static std::filesystem::path ScratchRoot() {
  std::error_code ec;
  if (std::filesystem::is_directory("/dev/shm", ec)) return "/dev/shm";
  return std::filesystem::temp_directory_path();
}

// The entries of list `key` of an exported definitions document, as a set of their texts.
static std::multiset<std::string> Entries(const nlohmann::json& doc, const char* key) {
  std::multiset<std::string> out;
  for (const auto& e : doc.at(key)) out.insert(e.dump());
  return out;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace warren;
  static bool quiet = (SetLogLevel("off"), true);
  (void)quiet;
  // One store for the whole run; each input is a fresh definitions.json and a fresh broker.
  static const std::string dir =
      (ScratchRoot() / ("warren-fuzz-defs-" + std::to_string(getpid()))).string();
  static boost::asio::io_context io;
  static storage::Store* store = [] {
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    storage::StoreOptions o;
    o.data_dir = dir;
    o.disk_free_limit = 0;
    auto* s = new storage::Store(storage::RealFs(), o, io);
    if (!s->Open()) std::abort();
    return s;
  }();
  {
    std::ofstream out(dir + "/definitions.json", std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  {
    broker::Broker broker(store);
    if (!broker.Recover()) {
      // Loaded: what is exported is JSON, and it loads into the same entries.
      auto doc = nlohmann::json::parse(broker.ExportDefinitions());
      broker::Broker again;
      std::vector<std::string> warnings;
      again.FindVhost("/")->ImportDefinitions(doc, warnings);
      auto doc2 = nlohmann::json::parse(again.ExportDefinitions());
      for (const char* key : {"queues", "exchanges", "bindings"}) {
        if (Entries(doc, key) != Entries(doc2, key)) std::abort();
      }
    }
  }
  return 0;
}
