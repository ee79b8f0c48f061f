#pragma once
// result<T>: the error vocabulary of every layer (style.md, practice 8).
//
// A function that can fail on peer input, disk contents or the environment returns
// result<T> instead of throwing. Each module defines its own `enum class errc` with an
// std::error_category; result<T> carries the std::error_code. Protocol errors that must reach
// the peer are richer values (amqp::Close) carried by the session layer, not by this type.

#include <boost/outcome/result.hpp>
#include <boost/outcome/try.hpp>
#include <system_error>

namespace warren {

namespace outcome = boost::outcome_v2;

template <typename T>
using result = outcome::result<T, std::error_code>;

// Deliberately dropping an error must be written down (style.md, practice 9).
template <typename R>
inline void ignore_error(R&& /*r*/, const char* /*why*/) {}

}  // namespace warren

#define WARREN_TRY BOOST_OUTCOME_TRY
