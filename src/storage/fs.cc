#include "storage/fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>

namespace warren::storage {

namespace {

std::error_code Errno() { return {errno, std::system_category()}; }

class PosixFile final : public File {
 public:
  PosixFile(int fd, std::string path, uint64_t size)
      : fd_(fd), path_(std::move(path)), size_(size), reserved_(size) {}
  ~PosixFile() override { ::close(fd_); }

  result<void> Append(std::span<const std::byte> bytes) override {
    uint64_t off = size_;
    size_t done = 0;
    while (done < bytes.size()) {
      ssize_t n =
          ::pwrite(fd_, bytes.data() + done, bytes.size() - done, static_cast<off_t>(off + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return Errno();
      }
      if (n == 0) return std::make_error_code(std::errc::no_space_on_device);
      done += static_cast<size_t>(n);
    }
    size_ = off + done;
    if (reserved_ < off + done) reserved_ = off + done;
    return outcome::success();
  }
  result<void> Sync() override {
    if (::fdatasync(fd_) != 0) return Errno();
    return outcome::success();
  }
  result<void> ReadAt(uint64_t offset, std::span<std::byte> out) override {
    size_t done = 0;
    while (done < out.size()) {
      ssize_t n =
          ::pread(fd_, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return Errno();
      }
      if (n == 0) return std::make_error_code(std::errc::io_error);  // short file
      done += static_cast<size_t>(n);
    }
    return outcome::success();
  }
  result<void> Truncate(uint64_t size) override {
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) return Errno();
    size_ = size;
    reserved_ = size;
    return outcome::success();
  }
  result<void> Reserve(uint64_t end) override {
    static constexpr std::byte kZeros[64 * 1024] = {};
    while (reserved_ < end) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(sizeof(kZeros), end - reserved_));
      ssize_t w = ::pwrite(fd_, kZeros, n, static_cast<off_t>(reserved_));
      if (w < 0) {
        if (errno == EINTR) continue;
        return Errno();
      }
      if (w == 0) return std::make_error_code(std::errc::no_space_on_device);
      reserved_ += static_cast<uint64_t>(w);
    }
    return outcome::success();
  }
  uint64_t size() const override { return size_; }
  uint64_t reserved() const override { return reserved_; }
  const std::string& path() const override { return path_; }

 private:
  int fd_;
  std::string path_;
  std::atomic<uint64_t> size_;
  std::atomic<uint64_t> reserved_;  // written by the writer; FaultyFs reads it at Sync
};

class PosixFs final : public FileSystem {
 public:
  result<FilePtr> Open(const std::string& path, bool create) override {
    int flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT | O_EXCL : 0);
    int fd = ::open(path.c_str(), flags, 0644);
    if (fd < 0) return Errno();
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      auto e = Errno();
      ::close(fd);
      return e;
    }
    return FilePtr(std::make_shared<PosixFile>(fd, path, static_cast<uint64_t>(st.st_size)));
  }
  result<std::vector<std::byte>> ReadWhole(const std::string& path) override {
    WARREN_TRY(auto f, Open(path, false));
    std::vector<std::byte> out(f->size());
    WARREN_TRY(f->ReadAt(0, out));
    return out;
  }
  bool Exists(const std::string& path) override {
    std::error_code ec;
    return std::filesystem::exists(path, ec);
  }
  result<std::vector<std::string>> List(const std::string& dir) override {
    std::error_code ec;
    std::vector<std::string> names;
    for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      names.push_back(it->path().filename().string());
    }
    if (ec) return ec;
    std::sort(names.begin(), names.end());
    return names;
  }
  result<void> CreateDirs(const std::string& dir) override {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return ec;
    return outcome::success();
  }
  result<void> SyncDir(const std::string& dir) override {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return Errno();
    int rc = ::fsync(fd);
    auto e = Errno();
    ::close(fd);
    if (rc != 0) return e;
    return outcome::success();
  }
  result<void> Rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) return Errno();
    return outcome::success();
  }
  result<void> Remove(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return Errno();
    return outcome::success();
  }
  result<void> RemoveAll(const std::string& path) override {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
    if (ec) return ec;
    return outcome::success();
  }
  result<uint64_t> FreeBytes(const std::string& path) override {
    struct statvfs s {};
    if (::statvfs(path.c_str(), &s) != 0) return Errno();
    return static_cast<uint64_t>(s.f_bavail) * s.f_frsize;
  }
};

}  // namespace

FileSystem& RealFs() {
  static PosixFs fs;
  return fs;
}

result<void> WriteFileAtomic(FileSystem& fs, const std::string& path,
                             std::span<const std::byte> bytes) {
  const std::string tmp = path + ".tmp";
  if (fs.Exists(tmp)) {
    WARREN_TRY(fs.Remove(tmp));
  }
  {
    WARREN_TRY(auto f, fs.Open(tmp, true));
    WARREN_TRY(f->Append(bytes));
    WARREN_TRY(f->Sync());
  }
  WARREN_TRY(fs.Rename(tmp, path));
  std::string dir = std::filesystem::path(path).parent_path().string();
  WARREN_TRY(fs.SyncDir(dir.empty() ? "." : dir));
  return outcome::success();
}

}  // namespace warren::storage
