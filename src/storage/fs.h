#pragma once
// The filesystem seam: every byte Warren puts on disk goes through FileSystem and File, so
// tests can swap in FaultyFs (faulty_fs.h), which injects short writes, EIO, ENOSPC and the
// loss of unsynced data at a simulated crash.
//
// Threading: a File is written and read on the shard thread and synced on the sync thread;
// the implementations allow that one writer plus one syncer concurrently. FileSystem calls are
// thread-safe.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"

namespace warren::storage {

class File {
 public:
  virtual ~File() = default;
  // Writes all of `bytes` at the end of the file. On error some prefix may have been written;
  // size() then still reports the old end and the caller should Truncate(size()).
  virtual result<void> Append(std::span<const std::byte> bytes) = 0;
  // fdatasync: everything appended before the call is durable when it returns success.
  virtual result<void> Sync() = 0;
  // Reads exactly out.size() bytes at `offset` (error if the file is shorter).
  virtual result<void> ReadAt(uint64_t offset, std::span<std::byte> out) = 0;
  // Cuts (or extends) the file to `size`, which becomes both size() and the physical length.
  virtual result<void> Truncate(uint64_t size) = 0;
  // Makes the file at least `end` bytes long by writing zeros past its physical end, without
  // moving size(). Appends that then land on written, zero-filled blocks change no file metadata
  // (no block allocation, no new length), so Sync writes only their data: no inode or journal
  // write per fdatasync. The zeros are made durable by the next Sync. On error some zeros may
  // have been written; nothing else changes.
  virtual result<void> Reserve(uint64_t end) = 0;
  // The end of the file as far as successful Appends go.
  virtual uint64_t size() const = 0;
  // The file's length: size() plus any zeros Reserve wrote past it.
  virtual uint64_t reserved() const = 0;
  virtual const std::string& path() const = 0;
};
using FilePtr = std::shared_ptr<File>;

class FileSystem {
 public:
  virtual ~FileSystem() = default;
  // Opens for reading and appending; `create` makes it (error if it exists), else it must exist.
  virtual result<FilePtr> Open(const std::string& path, bool create) = 0;
  virtual result<std::vector<std::byte>> ReadWhole(const std::string& path) = 0;
  virtual bool Exists(const std::string& path) = 0;
  // Names (not paths) of the entries in `dir`, sorted.
  virtual result<std::vector<std::string>> List(const std::string& dir) = 0;
  virtual result<void> CreateDirs(const std::string& dir) = 0;
  // fsync of a folder, so created, renamed and removed entries in it are durable.
  virtual result<void> SyncDir(const std::string& dir) = 0;
  virtual result<void> Rename(const std::string& from, const std::string& to) = 0;
  virtual result<void> Remove(const std::string& path) = 0;
  virtual result<void> RemoveAll(const std::string& path) = 0;
  virtual result<uint64_t> FreeBytes(const std::string& path) = 0;
};

// The real one (POSIX).
FileSystem& RealFs();

// Writes `bytes` to `path` atomically: path.tmp, fsync, rename, fsync of the folder.
result<void> WriteFileAtomic(FileSystem& fs, const std::string& path,
                             std::span<const std::byte> bytes);

}  // namespace warren::storage
