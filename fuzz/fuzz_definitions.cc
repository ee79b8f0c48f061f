// Fuzzes the definitions file read at start (docs/formats/definitions-v1.md): any bytes in
// definitions.json give either a clean start or a one-line error, never a crash.
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>

#include "base/logging.h"
#include "broker/broker.h"
#include "storage/store.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace warren;
  static bool quiet = (SetLogLevel("off"), true);
  (void)quiet;
  static const std::string dir =
      (std::filesystem::temp_directory_path() / ("warren-fuzz-defs-" + std::to_string(getpid())))
          .string();
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  {
    std::ofstream out(dir + "/definitions.json", std::ios::binary);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  boost::asio::io_context io;
  storage::StoreOptions o;
  o.data_dir = dir;
  o.disk_free_limit = 0;
  storage::Store store(storage::RealFs(), o, io);
  if (!store.Open()) return 0;
  {
    broker::Broker broker(&store);
    if (!broker.Recover()) {
      // Loaded: exporting what was loaded must work too.
      (void)broker.ExportDefinitions();
    }
    store.Close();
  }
  std::filesystem::remove_all(dir);
  return 0;
}
