#pragma once
// ByteBuffer: a growable byte vector with big-endian (network order) append helpers, the
// output side of every encoder. Reusable: Clear() keeps the capacity, so a connection's write
// buffer stops allocating once it has grown to its working size.
// Not thread-safe; owned by one executor.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

namespace warren {

class ByteBuffer {
 public:
  ByteBuffer() = default;
  explicit ByteBuffer(size_t reserve) { data_.reserve(reserve); }

  const std::byte* data() const { return data_.data(); }
  std::byte* data() { return data_.data(); }
  size_t size() const { return data_.size(); }
  bool empty() const { return data_.empty(); }
  void Clear() { data_.clear(); }
  // Exchanges contents and capacity (double-buffered writes keep both allocations).
  void Swap(ByteBuffer& other) { data_.swap(other.data_); }
  void Reserve(size_t n) { data_.reserve(n); }
  size_t capacity() const { return data_.capacity(); }
  // An empty buffer holding more than `limit` bytes of capacity gives it back.
  // Returns true if it gave its capacity back.
  bool ReleaseIfEmptyAndAbove(size_t limit) {
    if (!data_.empty() || data_.capacity() <= limit) return false;
    std::vector<std::byte>().swap(data_);
    return true;
  }
  void Resize(size_t n) { data_.resize(n); }
  std::span<const std::byte> span() const { return {data_.data(), data_.size()}; }
  // Removes the first n bytes (after a partial write).
  void Consume(size_t n) { data_.erase(data_.begin(), data_.begin() + static_cast<ptrdiff_t>(n)); }

  void PutU8(uint8_t v) { data_.push_back(static_cast<std::byte>(v)); }
  void PutU16(uint16_t v) {
    uint8_t b[2] = {static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)};
    PutBytes(b, 2);
  }
  void PutU32(uint32_t v) {
    uint8_t b[4] = {static_cast<uint8_t>(v >> 24), static_cast<uint8_t>(v >> 16),
                    static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)};
    PutBytes(b, 4);
  }
  void PutU64(uint64_t v) {
    PutU32(static_cast<uint32_t>(v >> 32));
    PutU32(static_cast<uint32_t>(v));
  }
  void PutBytes(const void* p, size_t n) {
    const auto* b = static_cast<const std::byte*>(p);
    data_.insert(data_.end(), b, b + n);
  }
  void PutBytes(std::span<const std::byte> s) { data_.insert(data_.end(), s.begin(), s.end()); }
  void PutString(std::string_view s) { PutBytes(s.data(), s.size()); }

  // Overwrites already-appended bytes (length fields written after the payload).
  void SetU32At(size_t pos, uint32_t v) {
    data_[pos] = static_cast<std::byte>(v >> 24);
    data_[pos + 1] = static_cast<std::byte>(v >> 16);
    data_[pos + 2] = static_cast<std::byte>(v >> 8);
    data_[pos + 3] = static_cast<std::byte>(v);
  }
  void SetU16At(size_t pos, uint16_t v) {
    data_[pos] = static_cast<std::byte>(v >> 8);
    data_[pos + 1] = static_cast<std::byte>(v);
  }

 private:
  std::vector<std::byte> data_;
};

// Big-endian reads from raw bytes; callers check bounds first.
inline uint16_t LoadU16(const std::byte* p) {
  return static_cast<uint16_t>((std::to_integer<uint16_t>(p[0]) << 8) |
                               std::to_integer<uint16_t>(p[1]));
}
inline uint32_t LoadU32(const std::byte* p) {
  return (std::to_integer<uint32_t>(p[0]) << 24) | (std::to_integer<uint32_t>(p[1]) << 16) |
         (std::to_integer<uint32_t>(p[2]) << 8) | std::to_integer<uint32_t>(p[3]);
}
inline uint64_t LoadU64(const std::byte* p) {
  return (static_cast<uint64_t>(LoadU32(p)) << 32) | LoadU32(p + 4);
}

}  // namespace warren
