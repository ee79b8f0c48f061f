#pragma once
// Helpers for tests and fuzzers that drive a Connection without a socket: the client side of
// the handshake as bytes, and the server's output decoded back into methods.

#include <string>
#include <vector>

#include "amqp/codec/frame_reader.h"
#include "amqp/codec/frame_writer.h"
#include "amqp/codec/methods.h"

namespace warren::amqp {

struct ClientHello {
  FieldTable capabilities;
  uint16_t channel_max = 2047;
  uint32_t frame_max = 131072;
  uint16_t heartbeat = 60;
};

// Protocol header, start-ok (PLAIN guest/guest), tune-ok and connection.open of vhost "/".
inline ByteBuffer ClientHandshake(const ClientHello& hello) {
  ByteBuffer b;
  b.PutBytes(kProtocolHeader, 8);
  ConnectionStartOk so;
  so.mechanism = "PLAIN";
  so.response = std::string("\0guest\0guest", 12);
  so.locale = "en_US";
  so.client_properties = {{"capabilities", FieldValue(hello.capabilities)}};
  WriteMethod(b, 0, so);
  ConnectionTuneOk to;
  to.channel_max = hello.channel_max;
  to.frame_max = hello.frame_max;
  to.heartbeat = hello.heartbeat;
  WriteMethod(b, 0, to);
  ConnectionOpen open;
  open.virtual_host = "/";
  WriteMethod(b, 0, open);
  return b;
}

// Decodes every method frame in `out` and empties it; counts heartbeat frames if asked.
inline std::vector<Method> DrainMethods(ByteBuffer& out, int* heartbeats = nullptr) {
  std::vector<Method> methods;
  FrameReader reader(1 << 20);
  std::span<const std::byte> s = out.span();
  while (!s.empty()) {
    auto r = reader.Next(s);
    auto* p = std::get_if<FrameParsed>(&r);
    if (p == nullptr) break;
    if (p->frame.type == kFrameMethodType) {
      methods.push_back(DecodeMethod(p->frame.payload).value());
    }
    if (p->frame.type == kFrameHeartbeatType && heartbeats != nullptr) ++*heartbeats;
    s = s.subspan(p->consumed);
  }
  out.Clear();
  return methods;
}

}  // namespace warren::amqp
