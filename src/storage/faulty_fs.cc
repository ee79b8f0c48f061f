#include "storage/faulty_fs.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>

namespace warren::storage {

class FaultyFile final : public File {
 public:
  FaultyFile(FaultyFs& fs, FilePtr real) : fs_(fs), real_(std::move(real)) {}
  result<void> Append(std::span<const std::byte> bytes) override {
    if (auto fault = fs_.TakeAppendFault()) {
      const size_t n = std::min(fault->second, bytes.size());
      if (n > 0) {
        // A torn write: the prefix reaches the file, the caller is told it failed.
        const uint64_t end = real_->size();
        ignore_error(real_->Append(bytes.first(n)), "the fault is what matters");
        // Report the old end, as a real failed write leaves size() unchanged.
        torn_end_ = end;
      }
      return fault->first;
    }
    if (torn_end_) {
      // The caller did not truncate: a real File writes at its old end, over the torn bytes.
      ignore_error(real_->Truncate(*torn_end_), "emulating pwrite at the old end");
      torn_end_.reset();
    }
    return real_->Append(bytes);
  }
  result<void> Sync() override {
    if (auto e = fs_.SyncFault()) return *e;
    WARREN_TRY(real_->Sync());
    fs_.Synced(real_->path(), real_->size(), real_->reserved());
    return outcome::success();
  }
  result<void> ReadAt(uint64_t offset, std::span<std::byte> out) override {
    return real_->ReadAt(offset, out);
  }
  result<void> Truncate(uint64_t size) override {
    torn_end_.reset();
    return real_->Truncate(size);
  }
  result<void> Reserve(uint64_t end) override {
    if (auto e = fs_.ReserveFault()) return *e;
    return real_->Reserve(end);
  }
  uint64_t size() const override { return torn_end_ ? *torn_end_ : real_->size(); }
  uint64_t reserved() const override { return real_->reserved(); }
  const std::string& path() const override { return real_->path(); }

 private:
  FaultyFs& fs_;
  FilePtr real_;
  std::optional<uint64_t> torn_end_;
};

void FaultyFs::FailAppends(int count, std::errc error, size_t prefix) {
  std::lock_guard lock(mu_);
  append_faults_ = count;
  append_error_ = error;
  append_prefix_ = prefix;
}

void FaultyFs::FailSyncs(bool on, std::errc error) {
  std::lock_guard lock(mu_);
  sync_fails_ = on;
  sync_error_ = error;
}

void FaultyFs::SetFreeBytes(std::optional<uint64_t> bytes) {
  std::lock_guard lock(mu_);
  free_bytes_ = bytes;
}

int FaultyFs::syncs() const {
  std::lock_guard lock(mu_);
  return syncs_;
}

std::optional<std::pair<std::error_code, size_t>> FaultyFs::TakeAppendFault() {
  std::lock_guard lock(mu_);
  if (append_faults_ <= 0) return std::nullopt;
  --append_faults_;
  return std::make_pair(std::make_error_code(append_error_), append_prefix_);
}

void FaultyFs::FailReserves(bool on) {
  std::lock_guard lock(mu_);
  reserve_fails_ = on;
}

std::optional<std::error_code> FaultyFs::ReserveFault() {
  std::lock_guard lock(mu_);
  if (!reserve_fails_) return std::nullopt;
  return std::make_error_code(std::errc::no_space_on_device);
}

std::optional<std::error_code> FaultyFs::SyncFault() {
  std::lock_guard lock(mu_);
  if (!sync_fails_) return std::nullopt;
  return std::make_error_code(sync_error_);
}

void FaultyFs::Synced(const std::string& path, uint64_t size, uint64_t reserved) {
  std::lock_guard lock(mu_);
  ++syncs_;
  synced_size_[path] = SyncedExtent{size, reserved};
}

result<FilePtr> FaultyFs::Open(const std::string& path, bool create) {
  WARREN_TRY(auto real, RealFs().Open(path, create));
  {
    std::lock_guard lock(mu_);
    if (create) {
      synced_size_[path] = SyncedExtent{};
      unsynced_new_.insert(path);
    } else if (!synced_size_.contains(path)) {
      // Existed before: on disk already.
      synced_size_[path] = SyncedExtent{real->size(), real->size()};
    }
  }
  return FilePtr(std::make_shared<FaultyFile>(*this, std::move(real)));
}

result<std::vector<std::byte>> FaultyFs::ReadWhole(const std::string& path) {
  return RealFs().ReadWhole(path);
}

result<void> FaultyFs::SyncDir(const std::string& dir) {
  if (auto e = SyncFault()) return *e;
  WARREN_TRY(RealFs().SyncDir(dir));
  std::lock_guard lock(mu_);
  std::erase_if(unsynced_new_, [&](const std::string& p) {
    return std::filesystem::path(p).parent_path() == std::filesystem::path(dir);
  });
  return outcome::success();
}

result<void> FaultyFs::Rename(const std::string& from, const std::string& to) {
  WARREN_TRY(RealFs().Rename(from, to));
  std::lock_guard lock(mu_);
  if (auto it = synced_size_.find(from); it != synced_size_.end()) {
    synced_size_[to] = it->second;
    synced_size_.erase(it);
  }
  if (unsynced_new_.erase(from) > 0) unsynced_new_.insert(to);
  return outcome::success();
}

result<uint64_t> FaultyFs::FreeBytes(const std::string& path) {
  {
    std::lock_guard lock(mu_);
    if (free_bytes_) return *free_bytes_;
  }
  return RealFs().FreeBytes(path);
}

void FaultyFs::Crash() {
  std::lock_guard lock(mu_);
  for (const auto& path : unsynced_new_) {
    std::error_code ec;
    std::filesystem::remove(path, ec);
    synced_size_.erase(path);
  }
  unsynced_new_.clear();
  for (const auto& [path, extent] : synced_size_) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) continue;
    const uint64_t length = std::filesystem::file_size(path, ec);
    if (ec) continue;
    // Past the synced data there were only the zeros Reserve wrote (synced with it); what was
    // appended over them since is lost, so they read as zeros again.
    const uint64_t keep = std::max(extent.size, std::min(extent.reserved, length));
    if (length > keep) std::filesystem::resize_file(path, keep, ec);
    if (keep > extent.size) {
      std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(static_cast<std::streamoff>(extent.size));
      const std::string zeros(static_cast<size_t>(keep - extent.size), '\0');
      f.write(zeros.data(), static_cast<std::streamsize>(zeros.size()));
    }
  }
}

}  // namespace warren::storage
