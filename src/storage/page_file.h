#pragma once
// PageFile: where a queue puts ready messages it does not keep in memory (docs/queues.md,
// "Paging"; bytes in docs/formats/paging-v1.md). An append-only run of records in numbered
// files under one folder, read back once, in append order; a file is deleted as soon as the
// reader has passed it, and the folder when the PageFile goes.
//
// Nothing here is synced: a page file holds transient messages (gone after a restart anyway)
// and copies or positions of persistent ones that are in their queue's segment log already.
// The folder `paging/` is emptied at every start (Store::Open).
//
// Records wait in a write buffer until it reaches kWriteChunk bytes, and are written with one
// write. If a write fails (ENOSPC, EIO) the records stay in memory, nothing is lost, and the
// write is tried again once the buffer has doubled; reads are served from the buffer meanwhile.
//
// Threading: the shard thread only.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "base/buffer.h"
#include "base/result.h"
#include "storage/fs.h"

namespace warren::storage {

class PageFile {
 public:
  static constexpr size_t kWriteChunk = 256u << 10;

  PageFile(FileSystem& fs, std::string dir, uint64_t file_bytes);
  ~PageFile();  // removes the folder and its files
  PageFile(const PageFile&) = delete;
  PageFile& operator=(const PageFile&) = delete;

  // Appends one record; `encode` writes its payload into the buffer it is given.
  template <typename F>
  void Append(F&& encode) {
    const size_t at = pending_.size();
    pending_.PutU32(0);
    encode(pending_);
    pending_.SetU32At(at, static_cast<uint32_t>(pending_.size() - at - 4));
    ++count_;
    if (pending_.size() >= flush_at_) Flush();
  }

  // Reads records in append order until about `max_bytes` have been read (at least one record
  // if there is any) and calls `fn(payload)` for each. Returns the number of records read, or
  // an error if a file could not be read or held a bad record (then the rest is unreadable:
  // the caller logs it and drops the PageFile).
  result<size_t> Read(size_t max_bytes, const std::function<void(std::span<const std::byte>)>& fn);

  // Records appended and not yet read.
  uint64_t count() const { return count_; }
  const std::string& dir() const { return dir_; }
  // Files currently on disk (tests).
  size_t file_count() const { return files_.size(); }

 private:
  struct PageSegment {
    uint32_t number = 0;
    FilePtr file;
  };
  void Flush();
  bool StartFile();
  std::string FilePath(uint32_t number) const;
  // Reads the records of pending_ from read_pending_ on.
  size_t ReadPending(size_t max_bytes, const std::function<void(std::span<const std::byte>)>& fn);

  FileSystem& fs_;
  std::string dir_;
  uint64_t file_bytes_;
  bool dir_created_ = false;
  std::deque<PageSegment> files_;  // front: being read; back: being written
  uint32_t next_number_ = 1;
  uint64_t read_offset_ = 0;  // in files_.front()
  ByteBuffer pending_;        // records after the back file's end, not written yet
  size_t read_pending_ = 0;   // records before this offset of pending_ were read already
  size_t flush_at_ = kWriteChunk;
  uint64_t count_ = 0;
  std::vector<std::byte> scratch_;
};

}  // namespace warren::storage
