#include "storage/segment.h"

#include <xxhash.h>

#include <algorithm>
#include <cstring>

namespace warren::storage {

namespace {

constexpr unsigned char kMagic[8] = {'W', 'R', 'N', 'S', 'E', 'G', 0, 1};

void PutLe(ByteBuffer& out, uint64_t v, int bytes) {
  unsigned char b[8];
  for (int i = 0; i < bytes; ++i) b[i] = static_cast<unsigned char>(v >> (8 * i));
  out.PutBytes(b, static_cast<size_t>(bytes));
}
void SetLeAt(ByteBuffer& out, size_t pos, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.data()[pos + i] = static_cast<std::byte>(v >> (8 * i));
}
uint64_t GetLe(const std::byte* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | std::to_integer<uint64_t>(p[i]);
  return v;
}

uint64_t Check(std::span<const std::byte> payload) {
  return XXH3_64bits(payload.data(), payload.size());
}

// Reserves the 12-byte header; FinishRecord fills it once the payload is appended.
size_t BeginRecord(ByteBuffer& out, RecordType type) {
  const size_t start = out.size();
  out.Resize(start + kRecordHeaderSize);
  out.PutU8(static_cast<uint8_t>(type));
  return start;
}
void FinishRecord(ByteBuffer& out, size_t start) {
  const size_t len = out.size() - start - kRecordHeaderSize;
  SetLeAt(out, start, len, 4);
  SetLeAt(out, start + 4,
          Check(std::span<const std::byte>(out.data() + start + kRecordHeaderSize, len)), 8);
}

// A bounds-checked little-endian reader over a payload.
struct Reader {
  std::span<const std::byte> b;
  size_t pos = 0;
  bool ok = true;
  uint64_t Int(int bytes) {
    if (!ok || b.size() - pos < static_cast<size_t>(bytes)) {
      ok = false;
      return 0;
    }
    uint64_t v = GetLe(b.data() + pos, bytes);
    pos += static_cast<size_t>(bytes);
    return v;
  }
  std::span<const std::byte> Bytes(size_t n) {
    if (!ok || b.size() - pos < n) {
      ok = false;
      return {};
    }
    auto s = b.subspan(pos, n);
    pos += n;
    return s;
  }
  std::string_view Short() {
    auto s = Bytes(static_cast<size_t>(Int(1)));
    return {reinterpret_cast<const char*>(s.data()), s.size()};
  }
};

}  // namespace

void EncodeSegmentHeader(ByteBuffer& out) {
  out.PutBytes(kMagic, sizeof kMagic);
  PutLe(out, kSegmentVersion, 4);
  PutLe(out, 0, 4);
}

bool CheckSegmentHeader(std::span<const std::byte> bytes) {
  return bytes.size() >= kSegmentHeaderSize && std::memcmp(bytes.data(), kMagic, 8) == 0 &&
         GetLe(bytes.data() + 8, 4) == kSegmentVersion;
}

void EncodeMessage(ByteBuffer& out, const MessageRecord& m) {
  const size_t start = BeginRecord(out, RecordType::kMessage);
  PutLe(out, m.seq, 8);
  PutLe(out, m.expires_at, 8);
  out.PutU8(m.flags);
  out.PutU8(static_cast<uint8_t>(m.exchange.size()));
  out.PutString(m.exchange);
  out.PutU8(static_cast<uint8_t>(m.routing_key.size()));
  out.PutString(m.routing_key);
  PutLe(out, m.properties.size(), 4);
  out.PutBytes(m.properties);
  out.PutBytes(m.body);
  FinishRecord(out, start);
}

void EncodeSeqList(ByteBuffer& out, RecordType type, std::span<const uint64_t> seqs) {
  const size_t start = BeginRecord(out, type);
  PutLe(out, seqs.size(), 4);
  for (uint64_t s : seqs) PutLe(out, s, 8);
  FinishRecord(out, start);
}

std::optional<MessageRecord> DecodeMessage(std::span<const std::byte> payload) {
  Reader r{payload};
  if (r.Int(1) != static_cast<uint8_t>(RecordType::kMessage)) return std::nullopt;
  MessageRecord m;
  m.seq = r.Int(8);
  m.expires_at = r.Int(8);
  m.flags = static_cast<uint8_t>(r.Int(1));
  m.exchange = r.Short();
  m.routing_key = r.Short();
  m.properties = r.Bytes(static_cast<size_t>(r.Int(4)));
  if (!r.ok) return std::nullopt;
  m.body = payload.subspan(r.pos);
  return m;
}

bool DecodeSeqList(std::span<const std::byte> payload, std::vector<uint64_t>& out) {
  Reader r{payload};
  r.Int(1);
  const uint64_t n = r.Int(4);
  if (!r.ok || (payload.size() - r.pos) / 8 < n) return false;
  for (uint64_t i = 0; i < n; ++i) out.push_back(r.Int(8));
  return r.ok;
}

std::optional<std::span<const std::byte>> CheckRecord(std::span<const std::byte> bytes) {
  if (bytes.size() < kRecordHeaderSize) return std::nullopt;
  const uint64_t len = GetLe(bytes.data(), 4);
  if (len == 0 || len > kMaxRecordPayload || bytes.size() - kRecordHeaderSize < len) {
    return std::nullopt;
  }
  auto payload = bytes.subspan(kRecordHeaderSize, static_cast<size_t>(len));
  if (Check(payload) != GetLe(bytes.data() + 4, 8)) return std::nullopt;
  return payload;
}

ScanResult ScanRecords(
    std::span<const std::byte> bytes,
    const std::function<void(uint8_t, std::span<const std::byte>, uint64_t, uint32_t)>& fn) {
  ScanResult r;
  uint64_t pos = kSegmentHeaderSize;
  while (pos < bytes.size()) {
    auto payload = CheckRecord(bytes.subspan(static_cast<size_t>(pos)));
    if (!payload) {
      r.torn = true;
      break;
    }
    const auto size = static_cast<uint32_t>(kRecordHeaderSize + payload->size());
    fn(std::to_integer<uint8_t>((*payload)[0]), *payload, pos, size);
    pos += size;
  }
  r.valid_end = std::min<uint64_t>(pos, bytes.size());
  if (r.torn) {
    const auto rest = bytes.subspan(static_cast<size_t>(r.valid_end));
    r.zero_tail =
        std::all_of(rest.begin(), rest.end(), [](std::byte b) { return b == std::byte{0}; });
  }
  return r;
}

}  // namespace warren::storage
