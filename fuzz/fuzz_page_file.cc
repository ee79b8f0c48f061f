// Fuzzes the page-file records a queue reads back (docs/formats/paging-v1.md). The input is
// decoded as one record's payload (never a crash; a record that decodes encodes back to the
// same entry), and split into records that go through a real PageFile and must come back
// unchanged and in order.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "base/logging.h"
#include "broker/broker.h"
#include "storage/page_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace warren;
  static bool quiet = (SetLogLevel("off"), true);
  (void)quiet;
  const auto* bytes = reinterpret_cast<const std::byte*>(data);
  broker::QueueEntry e;
  if (broker::DecodePageEntry({bytes, size}, e)) {
    ByteBuffer again;
    broker::EncodePageEntry(again, e, e.message != nullptr);
    broker::QueueEntry back;
    if (!broker::DecodePageEntry(again.span(), back)) __builtin_trap();
    if (back.seq != e.seq || back.expires_at != e.expires_at || back.redelivered != e.redelivered ||
        back.loc.segment != e.loc.segment || back.loc.offset != e.loc.offset ||
        back.loc.size != e.loc.size || (back.message == nullptr) != (e.message == nullptr)) {
      __builtin_trap();
    }
    if (e.message &&
        (back.message->data != e.message->data || back.message->exchange != e.message->exchange ||
         back.message->routing_key != e.message->routing_key)) {
      __builtin_trap();
    }
  }
  // Records: the input cut at every 0xFF byte, through a PageFile with small files.
  static const std::string dir =
      (std::filesystem::temp_directory_path() / ("warren-fuzz-page-" + std::to_string(getpid())))
          .string();
  std::vector<std::vector<std::byte>> records(1);
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == 0xFF) {
      records.emplace_back();
    } else {
      records.back().push_back(bytes[i]);
    }
  }
  {
    storage::PageFile file(storage::RealFs(), dir, 4096);
    size_t read = 0;
    auto check = [&](std::span<const std::byte> p) {
      if (read >= records.size() ||
          !std::equal(p.begin(), p.end(), records[read].begin(), records[read].end())) {
        __builtin_trap();
      }
      ++read;
    };
    for (size_t i = 0; i < records.size(); ++i) {
      file.Append([&](ByteBuffer& out) { out.PutBytes(records[i]); });
      if (i % 3 == 2 && !file.Read(64, check)) __builtin_trap();
    }
    while (file.count() > 0) {
      auto n = file.Read(64, check);
      if (!n || n.value() == 0) __builtin_trap();
    }
    if (read != records.size()) __builtin_trap();
  }
  return 0;
}
