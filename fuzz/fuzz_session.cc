// Feeds arbitrary frames to a logged-in AMQP connection (session + broker, no sockets): the
// handshake is done for real, then the fuzzer's bytes follow, in pieces, with ticks and a close
// at the end. Whatever the bytes, nothing may crash, leak or touch freed memory.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>

#include "amqp/codec/frame_writer.h"
#include "amqp/session/session.h"
#include "amqp/session/session_testing.h"
#include "base/fake_transport.h"
#include "base/logging.h"

namespace {

warren::ByteBuffer Handshake() {
  using namespace warren::amqp;
  ClientHello hello;
  hello.capabilities = {{"consumer_cancel_notify", FieldValue(true)}};
  hello.channel_max = 16;
  hello.frame_max = 8192;
  hello.heartbeat = 0;
  warren::ByteBuffer b = ClientHandshake(hello);
  for (uint16_t ch = 1; ch <= 2; ++ch) WriteMethod(b, ch, ChannelOpen{});
  return b;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  warren::SetLogLevel("off");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace warren;
  broker::Broker broker;
  warren::FakeTransport t;
  amqp::SessionConfig cfg;
  cfg.max_message_size = 1 << 16;
  auto conn = amqp::MakeAmqpHandler(t, broker, cfg);
  static const ByteBuffer hs = Handshake();
  std::vector<std::byte> pending(hs.data(), hs.data() + hs.size());
  // The first byte picks the read size, so frames split across reads are exercised too.
  const size_t chunk = size > 0 ? (data[0] % 64) + 1 : 1;
  size_t off = size > 0 ? 1 : 0;
  auto feed = [&] {
    size_t used = conn->OnData(pending);
    if (used > pending.size()) __builtin_trap();
    pending.erase(pending.begin(), pending.begin() + static_cast<ptrdiff_t>(used));
    conn->Output().Clear();
  };
  feed();
  while (off < size && !t.closed && !t.aborted) {
    const size_t n = std::min(chunk, size - off);
    pending.insert(pending.end(), reinterpret_cast<const std::byte*>(data + off),
                   reinterpret_cast<const std::byte*>(data + off + n));
    off += n;
    feed();
  }
  conn->OnTick(std::chrono::steady_clock::now() + std::chrono::seconds(30));
  conn->OnClosed();
  return 0;
}
