#include "storage/page_file.h"

#include <algorithm>
#include <cstdio>

#include "base/logging.h"

namespace warren::storage {

namespace {

auto Log() {
  static auto log = GetLogger("storage");
  return log;
}

constexpr size_t kReadChunk = 64u << 10;

}  // namespace

PageFile::PageFile(FileSystem& fs, std::string dir, uint64_t file_bytes)
    : fs_(fs), dir_(std::move(dir)), file_bytes_(file_bytes) {}

PageFile::~PageFile() {
  files_.clear();
  if (dir_created_) ignore_error(fs_.RemoveAll(dir_), "paging/ is emptied at the next start");
}

std::string PageFile::FilePath(uint32_t number) const {
  char buf[32];
  std::snprintf(buf, sizeof buf, "/%010u.page", number);
  return dir_ + buf;
}

bool PageFile::StartFile() {
  if (!dir_created_) {
    if (auto r = fs_.CreateDirs(dir_); !r) {
      Log()->error("cannot create {}: {}; paged messages stay in memory", dir_,
                   r.error().message());
      return false;
    }
    dir_created_ = true;
  }
  auto file = fs_.Open(FilePath(next_number_), true);
  if (!file) {
    Log()->error("cannot create {}: {}; paged messages stay in memory", FilePath(next_number_),
                 file.error().message());
    return false;
  }
  if (files_.empty()) read_offset_ = 0;
  files_.push_back(PageSegment{next_number_++, file.value()});
  return true;
}

void PageFile::Flush() {
  if (read_pending_ > 0) {
    pending_.Consume(read_pending_);
    read_pending_ = 0;
  }
  if (pending_.empty()) return;
  const bool ok = [&] {
    if ((files_.empty() || files_.back().file->size() >= file_bytes_) && !StartFile()) {
      return false;
    }
    File& f = *files_.back().file;
    const uint64_t end = f.size();
    if (auto r = f.Append(pending_.span()); !r) {
      Log()->error("write to {} failed: {}; paged messages stay in memory until a write succeeds",
                   f.path(), r.error().message());
      ignore_error(f.Truncate(end), "the next write starts at `end` again");
      return false;
    }
    return true;
  }();
  if (!ok) {
    // Kept; tried again once the buffer has doubled, so a full disk is not asked every record.
    flush_at_ = pending_.size() * 2;
    return;
  }
  pending_.Clear();
  pending_.ReleaseIfEmptyAndAbove(4 * kWriteChunk);
  flush_at_ = kWriteChunk;
}

size_t PageFile::ReadPending(size_t max_bytes,
                             const std::function<void(std::span<const std::byte>)>& fn) {
  size_t got = 0;
  size_t n = 0;
  while (read_pending_ < pending_.size() && (n == 0 || got < max_bytes)) {
    const std::byte* p = pending_.data() + read_pending_;
    const uint32_t len = LoadU32(p);
    fn(std::span<const std::byte>(p + 4, len));
    --count_;
    ++n;
    got += 4 + len;
    read_pending_ += 4 + len;
  }
  if (read_pending_ == pending_.size()) {
    pending_.Clear();
    read_pending_ = 0;
  }
  return n;
}

result<size_t> PageFile::Read(size_t max_bytes,
                              const std::function<void(std::span<const std::byte>)>& fn) {
  size_t got = 0;
  size_t n = 0;
  while (count_ > 0 && (n == 0 || got < max_bytes)) {
    if (files_.empty() || (files_.size() == 1 && read_offset_ >= files_.front().file->size())) {
      // Everything written has been read: the rest is in the write buffer.
      const size_t k = ReadPending(max_bytes > got ? max_bytes - got : 1, fn);
      if (k == 0) break;
      n += k;
      continue;
    }
    PageSegment& front = files_.front();
    const uint64_t end = front.file->size();
    if (read_offset_ >= end) {
      ignore_error(fs_.Remove(front.file->path()), "paging/ is emptied at the next start");
      files_.pop_front();
      read_offset_ = 0;
      continue;
    }
    const size_t want = static_cast<size_t>(
        std::min<uint64_t>(end - read_offset_, std::max(kReadChunk, max_bytes - got)));
    scratch_.resize(want);
    WARREN_TRY(front.file->ReadAt(read_offset_, scratch_));
    size_t pos = 0;
    while (pos + 4 <= want && count_ > 0 && (n == 0 || got < max_bytes)) {
      const uint32_t len = LoadU32(scratch_.data() + pos);
      if (pos + 4 + len > want) break;
      fn(std::span<const std::byte>(scratch_.data() + pos + 4, len));
      --count_;
      ++n;
      got += 4 + len;
      pos += 4 + len;
    }
    if (pos == 0) {
      // One record larger than the chunk: read it whole.
      if (want < 4) return std::make_error_code(std::errc::illegal_byte_sequence);
      const uint32_t len = LoadU32(scratch_.data());
      if (read_offset_ + 4 + len > end) {
        return std::make_error_code(std::errc::illegal_byte_sequence);
      }
      scratch_.resize(4 + size_t{len});
      WARREN_TRY(front.file->ReadAt(read_offset_, scratch_));
      fn(std::span<const std::byte>(scratch_.data() + 4, len));
      --count_;
      ++n;
      got += 4 + len;
      pos = 4 + size_t{len};
    }
    read_offset_ += pos;
  }
  if (scratch_.capacity() > 4 * kReadChunk) std::vector<std::byte>().swap(scratch_);
  if (count_ == 0) {
    // All read: the files go, and the next page-out starts a new one.
    for (const auto& f : files_) {
      ignore_error(fs_.Remove(f.file->path()), "paging/ is emptied at the next start");
    }
    files_.clear();
    read_offset_ = 0;
    pending_.Clear();
    read_pending_ = 0;
    flush_at_ = kWriteChunk;
  }
  return n;
}

}  // namespace warren::storage
