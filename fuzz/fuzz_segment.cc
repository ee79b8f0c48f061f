// Fuzzes what recovery reads from disk: the input is a segment file's records (a valid header
// is put in front). Checks the pure decoders, then a real QueueLog::Recover of the file and a
// read-back of every message it reports. Disk contents must never crash the broker
// (design.md section 7).
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>

#include "base/logging.h"
#include "storage/segment.h"
#include "storage/store.h"

// tmpfs when there is one: fsync there costs nothing, so the fuzzer runs many inputs a second.
static std::filesystem::path ScratchRoot() {
  std::error_code ec;
  if (std::filesystem::is_directory("/dev/shm", ec)) return "/dev/shm";
  return std::filesystem::temp_directory_path();
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace warren::storage;
  static bool quiet = (warren::SetLogLevel("off"), true);
  (void)quiet;
  warren::ByteBuffer file;
  EncodeSegmentHeader(file);
  file.PutBytes(data, size);
  ScanRecords(file.span(),
              [](uint8_t type, std::span<const std::byte> payload, uint64_t, uint32_t) {
                std::vector<uint64_t> seqs;
                if (type == static_cast<uint8_t>(RecordType::kMessage)) {
                  DecodeMessage(payload);
                } else {
                  DecodeSeqList(payload, seqs);
                }
              });

  // One store for the whole run (its sync thread lives across inputs); each input gets a
  // queue folder of its own.
  static const std::string dir =
      (ScratchRoot() / ("warren-fuzz-segment-" + std::to_string(getpid()))).string();
  static boost::asio::io_context io;
  static Store* store = [] {
    std::filesystem::remove_all(dir);
    StoreOptions o;
    o.data_dir = dir;
    o.disk_free_limit = 0;
    auto* s = new Store(RealFs(), o, io);
    if (!s->Open()) std::abort();
    return s;
  }();
  static uint64_t n = 0;
  auto log = store->OpenQueue("/", std::to_string(++n));
  std::filesystem::create_directories(log->dir());
  {
    std::ofstream out(log->dir() + "/00000000000000000001.seg", std::ios::binary);
    out.write(reinterpret_cast<const char*>(file.data()),
              static_cast<std::streamsize>(file.size()));
  }
  RecoveryStats stats;
  for (const auto& m : log->Recover(stats)) {
    auto r = log->Read(m.loc);
    if (r) DecodeMessage(r.value());
  }
  // The log keeps working after whatever it recovered.
  const std::string body = "after";
  MessageRecord m;
  m.seq = log->max_seq() + 1;
  m.body = std::as_bytes(std::span(body));
  log->Append(m);
  store->DestroyQueue(std::move(log));
  store->SyncNowForTest();
  return 0;
}
