#pragma once
// A Transport for tests and fuzzers: no socket; records what the handler asked of it.

#include <string>

#include "base/transport.h"

namespace warren {

class FakeTransport : public Transport {
 public:
  void RequestFlush() override { ++flushes; }
  void CloseAfterFlush() override { closed = true; }
  void Abort() override { aborted = true; }
  void SetReading(bool enabled) override { reading = enabled; }
  ConnectionId id() const override { return ConnectionId(1); }
  const std::string& peer() const override { return peer_; }
  bool peer_is_loopback() const override { return loopback; }
  size_t pending_output() const override { return pending; }

  int flushes = 0;
  bool closed = false;
  bool aborted = false;
  bool loopback = true;
  bool reading = true;
  size_t pending = 0;  // what pending_output() reports

 private:
  std::string peer_ = "test:1";
};

}  // namespace warren
