#pragma once
// Strong id types (style.md, practice 16): distinct types that wrap an integer so that a
// ChannelId cannot be passed where a DeliveryTag is expected.

#include <compare>
#include <cstdint>
#include <functional>

namespace warren {

template <typename T, typename Tag>
class StrongId {
 public:
  using value_type = T;
  constexpr StrongId() = default;
  constexpr explicit StrongId(T v) : v_(v) {}
  constexpr T value() const { return v_; }
  constexpr auto operator<=>(const StrongId&) const = default;

 private:
  T v_{};
};

using ChannelId = StrongId<uint16_t, struct ChannelIdTag>;
using DeliveryTag = StrongId<uint64_t, struct DeliveryTagTag>;
using ConnectionId = StrongId<uint64_t, struct ConnectionIdTag>;
using SegmentId = StrongId<uint64_t, struct SegmentIdTag>;
using QueueOffset = StrongId<uint64_t, struct QueueOffsetTag>;

}  // namespace warren

template <typename T, typename Tag>
struct std::hash<warren::StrongId<T, Tag>> {
  size_t operator()(const warren::StrongId<T, Tag>& id) const noexcept {
    return std::hash<T>{}(id.value());
  }
};
