#pragma once
// Server-generated names ("amq.gen-…" queues, "amq.ctag-…" consumer tags): a prefix and
// `length` URL-safe base64 characters, as RabbitMQ makes them. Not cryptographic: names must
// only be unique in practice. One generator per thread.

#include <random>
#include <string>
#include <string_view>

namespace warren {

inline std::string RandomName(std::string_view prefix, int length = 22) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string s(prefix);
  for (int i = 0; i < length; ++i) s += kAlphabet[rng() % 64];
  return s;
}

}  // namespace warren
