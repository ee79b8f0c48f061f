// recovery_fill: writes a data dir holding one durable queue with N persistent messages, the
// way warrend would have left it, for the recovery benchmark (bench/recovery.sh).
//
// The segment files are written through warren::storage (Store + QueueLog, the same code the
// broker uses, so the bytes follow docs/formats/segment-v1.md) and definitions.json names the
// queue (docs/formats/definitions-v1.md). Much faster than publishing N messages over AMQP.
//
//   recovery_fill --data-dir DIR --messages 10000000 [--size 16] [--queue recovery-bench]
//                 [--acked-percent 0] [--segment-bytes 8388608]
//
// --acked-percent P appends ack records for the first P% of the messages (so recovery also has
// acks to apply); their segments are trimmed as a broker would.

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "storage/fs.h"
#include "storage/segment.h"
#include "storage/store.h"

namespace {

void Usage() {
  std::fprintf(stderr,
               "usage: recovery_fill --data-dir DIR --messages N [--size B] [--queue NAME]\n"
               "                     [--acked-percent P] [--segment-bytes B]\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace warren;
  std::string data_dir;
  std::string queue = "recovery-bench";
  uint64_t messages = 0;
  size_t size = 16;
  uint64_t acked_percent = 0;
  uint64_t segment_bytes = 8u << 20;
  for (int i = 1; i < argc; ++i) {
    auto arg = [&]() -> const char* {
      if (i + 1 >= argc) Usage();
      return argv[++i];
    };
    if (!std::strcmp(argv[i], "--data-dir")) {
      data_dir = arg();
    } else if (!std::strcmp(argv[i], "--messages")) {
      messages = std::strtoull(arg(), nullptr, 10);
    } else if (!std::strcmp(argv[i], "--size")) {
      size = std::strtoull(arg(), nullptr, 10);
    } else if (!std::strcmp(argv[i], "--queue")) {
      queue = arg();
    } else if (!std::strcmp(argv[i], "--acked-percent")) {
      acked_percent = std::strtoull(arg(), nullptr, 10);
    } else if (!std::strcmp(argv[i], "--segment-bytes")) {
      segment_bytes = std::strtoull(arg(), nullptr, 10);
    } else {
      Usage();
    }
  }
  if (data_dir.empty() || messages == 0 || acked_percent > 100) Usage();
  if (std::filesystem::exists(data_dir + "/queues") ||
      std::filesystem::exists(data_dir + "/definitions.json")) {
    std::fprintf(stderr, "recovery_fill: %s already holds a Warren data dir; use an empty one\n",
                 data_dir.c_str());
    return 1;
  }
  std::filesystem::create_directories(data_dir);

  const auto start = std::chrono::steady_clock::now();
  boost::asio::io_context io(1);
  storage::StoreOptions opts;
  opts.data_dir = data_dir;
  opts.segment_bytes = segment_bytes;
  opts.disk_free_limit = 0;
  storage::Store store(storage::RealFs(), opts, io);
  if (auto r = store.Open(); !r) {
    std::fprintf(stderr, "recovery_fill: cannot open storage: %s\n", r.error().message().c_str());
    return 1;
  }
  // definitions.json naming the queue, in RabbitMQ's export format.
  const std::string definitions =
      "{\n  \"warren_format\": 1,\n  \"product_name\": \"Warren\",\n"
      "  \"product_version\": \"0.1.0\",\n  \"users\": [],\n  \"vhosts\": [{\"name\": \"/\"}],\n"
      "  \"permissions\": [],\n  \"topic_permissions\": [],\n  \"parameters\": [],\n"
      "  \"global_parameters\": [],\n  \"policies\": [],\n"
      "  \"queues\": [{\"name\": \"" +
      queue +
      "\", \"vhost\": \"/\", \"durable\": true, \"auto_delete\": false, \"arguments\": {}}],\n"
      "  \"exchanges\": [],\n  \"bindings\": []\n}\n";
  store.SetDefinitionsSource([definitions](std::string& out) { out += definitions; });
  store.DefinitionsChanged();

  auto log = store.OpenQueue("/", queue);
  // Content-header properties as a client publishing with delivery-mode 2 sends them:
  // property flags 0x1000 (delivery-mode), then the octet 2.
  const std::byte props[] = {std::byte{0x10}, std::byte{0x00}, std::byte{0x02}};
  std::vector<std::byte> body(size, std::byte{'x'});
  const uint64_t acked = messages * acked_percent / 100;
  std::vector<storage::Location> locs;
  if (acked > 0) locs.reserve(acked);
  uint64_t bytes = 0;
  for (uint64_t seq = 1; seq <= messages; ++seq) {
    std::memcpy(body.data(), &seq, std::min<size_t>(size, sizeof seq));
    storage::MessageRecord m;
    m.seq = seq;
    m.exchange = "";
    m.routing_key = queue;
    m.properties = props;
    m.body = body;
    const storage::Location loc = log->Append(m);
    if (!loc.stored()) {
      std::fprintf(stderr, "recovery_fill: append %llu failed\n",
                   static_cast<unsigned long long>(seq));
      return 1;
    }
    bytes += loc.size;
    if (seq <= acked) locs.push_back(loc);
    if (seq % 65536 == 0) {
      store.Commit();
      io.poll();
    }
  }
  for (uint64_t seq = 1; seq <= acked; ++seq) {
    log->Ack(seq, locs[seq - 1]);
    if (seq % 65536 == 0) {
      store.Commit();
      io.poll();
    }
  }
  store.SyncNowForTest();
  const uint64_t segments = log->segment_count();
  log.reset();
  store.Close();
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "{\"messages\":%llu,\"acked\":%llu,\"size\":%zu,\"record_bytes\":%llu,\"segments\":%llu,"
      "\"queue\":\"%s\",\"fill_s\":%.3f}\n",
      static_cast<unsigned long long>(messages), static_cast<unsigned long long>(acked), size,
      static_cast<unsigned long long>(bytes), static_cast<unsigned long long>(segments),
      queue.c_str(), secs);
  return 0;
}
