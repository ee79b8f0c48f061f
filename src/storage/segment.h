#pragma once
// Byte-level encoding of queue segment files (docs/formats/segment-v1.md): the segment header,
// records (length, XXH3 check, payload) and the three record types. Pure functions over bytes;
// no I/O.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "base/buffer.h"

namespace warren::storage {

inline constexpr size_t kSegmentHeaderSize = 16;
inline constexpr size_t kRecordHeaderSize = 12;  // u32 len + u64 check
inline constexpr uint32_t kSegmentVersion = 1;
inline constexpr uint32_t kMaxRecordPayload = 1u << 31;

enum class RecordType : uint8_t { kMessage = 1, kAcks = 2, kDelivered = 3 };

// A message record's fields; the views point into the record's bytes.
struct MessageRecord {
  uint64_t seq = 0;
  uint64_t expires_at = 0;  // Unix ms, 0 = never
  uint8_t flags = 0;
  std::string_view exchange;
  std::string_view routing_key;
  std::span<const std::byte> properties;
  std::span<const std::byte> body;
};

void EncodeSegmentHeader(ByteBuffer& out);
// False if `bytes` does not start with a version-1 segment header.
bool CheckSegmentHeader(std::span<const std::byte> bytes);

// Append one whole record (header and payload) to `out`.
void EncodeMessage(ByteBuffer& out, const MessageRecord& m);
void EncodeSeqList(ByteBuffer& out, RecordType type, std::span<const uint64_t> seqs);

// Decode a record's payload (the bytes after the 12-byte header, type byte first).
std::optional<MessageRecord> DecodeMessage(std::span<const std::byte> payload);
bool DecodeSeqList(std::span<const std::byte> payload, std::vector<uint64_t>& out);

// Checks one record at the start of `bytes`; returns its payload, or nothing if the record is
// incomplete or its check fails.
std::optional<std::span<const std::byte>> CheckRecord(std::span<const std::byte> bytes);

struct ScanResult {
  uint64_t valid_end = 0;  // offset just past the last good record
  bool torn = false;       // bytes after valid_end were not a good record
  bool zero_tail = false;  // ...and every one of them is zero: preallocated, not torn
};
// Walks the records of a whole segment (header included in `bytes`, already checked).
// `fn(type, payload, record_offset, record_size)` is called for each good record.
ScanResult ScanRecords(
    std::span<const std::byte> bytes,
    const std::function<void(uint8_t, std::span<const std::byte>, uint64_t, uint32_t)>& fn);

}  // namespace warren::storage
