#pragma once
// A protocol error as the peer will see it: the arguments of channel.close or
// connection.close. Whether it closes the channel or the connection follows from the reply
// code (the generated soft/hard table), never from the call site.

#include <boost/outcome/result.hpp>
#include <cstdint>
#include <string>
#include <string_view>

namespace warren::amqp {

struct Close {
  uint16_t reply_code = 0;
  std::string reply_text;  // "NOT_FOUND - no queue 'q' in vhost '/'", at most 255 bytes
  uint16_t class_id = 0;
  uint16_t method_id = 0;

  // True when this error closes the connection (hard error), false for the channel.
  bool hard() const;
  bool operator==(const Close&) const = default;
};

// Builds "<REPLY_NAME> - <explanation>" truncated to 255 bytes, as RabbitMQ formats reply texts.
Close MakeClose(uint16_t reply_code, std::string_view explanation, uint16_t class_id = 0,
                uint16_t method_id = 0);

// The result of decoding peer input: a value or the Close to answer with.
template <typename T>
using DecodeResult = boost::outcome_v2::result<T, Close, boost::outcome_v2::policy::terminate>;

}  // namespace warren::amqp
