#pragma once
// FaultyFs: a FileSystem double for tests. It passes everything to the real filesystem (use a
// temporary folder) and injects the faults storage must survive:
//   - the next Append writes only a prefix and then fails (short write, EIO, ENOSPC);
//   - Sync fails (EIO) while a switch is on; so does Reserve (ENOSPC), on a switch of its own;
//   - free space reads as a chosen number;
//   - Crash(): what was not synced is lost: every file is cut back to what its last successful
//     Sync covered (zeros Reserve wrote before that Sync stay, and read as zeros again where
//     later appends went), and files created since their folder's last SyncDir disappear.
// Thread-safe.

#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <system_error>

#include "storage/fs.h"

namespace warren::storage {

class FaultyFs final : public FileSystem {
 public:
  FaultyFs() = default;

  // The next `count` Appends write `prefix` bytes (at most) and then fail with `error`.
  void FailAppends(int count, std::errc error, size_t prefix = 0);
  void FailSyncs(bool on, std::errc error = std::errc::io_error);
  void FailReserves(bool on);
  void SetFreeBytes(std::optional<uint64_t> bytes);
  void Crash();
  int syncs() const;

  result<FilePtr> Open(const std::string& path, bool create) override;
  result<std::vector<std::byte>> ReadWhole(const std::string& path) override;
  bool Exists(const std::string& path) override { return RealFs().Exists(path); }
  result<std::vector<std::string>> List(const std::string& dir) override {
    return RealFs().List(dir);
  }
  result<void> CreateDirs(const std::string& dir) override { return RealFs().CreateDirs(dir); }
  result<void> SyncDir(const std::string& dir) override;
  result<void> Rename(const std::string& from, const std::string& to) override;
  result<void> Remove(const std::string& path) override { return RealFs().Remove(path); }
  result<void> RemoveAll(const std::string& path) override { return RealFs().RemoveAll(path); }
  result<uint64_t> FreeBytes(const std::string& path) override;

 private:
  friend class FaultyFile;
  // Returns the error to inject into an Append and the bytes to write first, if any.
  std::optional<std::pair<std::error_code, size_t>> TakeAppendFault();
  std::optional<std::error_code> SyncFault();
  std::optional<std::error_code> ReserveFault();
  void Synced(const std::string& path, uint64_t size, uint64_t reserved);

  mutable std::mutex mu_;
  int append_faults_ = 0;
  std::errc append_error_ = std::errc::io_error;
  size_t append_prefix_ = 0;
  bool sync_fails_ = false;
  bool reserve_fails_ = false;
  std::errc sync_error_ = std::errc::io_error;
  std::optional<uint64_t> free_bytes_;
  int syncs_ = 0;
  struct SyncedExtent {
    uint64_t size = 0;      // data covered by the last successful Sync
    uint64_t reserved = 0;  // the file's length (Reserve's zeros included) at that Sync
  };
  std::map<std::string, SyncedExtent> synced_size_;  // every file opened through us
  std::set<std::string> unsynced_new_;               // created, folder not synced since
};

}  // namespace warren::storage
