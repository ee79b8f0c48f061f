#pragma once
// Placeholder AMQP handler used until the AMQP session module is wired in: answers any client
// with the AMQP 0-9-1 protocol header and closes, which is what a server sends to a client
// whose protocol it does not serve. Logs one line per refused connection.

#include "base/logging.h"
#include "base/transport.h"

namespace warren::app {

class RefusingHandler : public ProtocolHandler {
 public:
  explicit RefusingHandler(Transport& t) : t_(t) {}
  size_t OnData(std::span<const std::byte> data) override {
    if (!answered_) {
      answered_ = true;
      static constexpr char kHeader[8] = {'A', 'M', 'Q', 'P', 0, 0, 9, 1};
      out_.PutBytes(kHeader, sizeof kHeader);
      GetLogger("amqp")->info("{}: AMQP sessions are not served yet; connection refused",
                              t_.peer());
      t_.CloseAfterFlush();
    }
    return data.size();
  }
  ByteBuffer& Output() override { return out_; }
  void OnTick(std::chrono::steady_clock::time_point) override {}
  void OnClosed() override {}

 private:
  Transport& t_;
  ByteBuffer out_;
  bool answered_ = false;
};

}  // namespace warren::app
