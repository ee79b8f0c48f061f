#include "storage/page_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "storage/faulty_fs.h"

namespace warren::storage {
namespace {

class PageFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("warren-page-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static void Put(PageFile& p, const std::string& s) {
    p.Append([&](ByteBuffer& out) { out.PutString(s); });
  }
  static std::vector<std::string> ReadAll(PageFile& p, size_t max_bytes = 1u << 20) {
    std::vector<std::string> out;
    while (p.count() > 0) {
      auto n = p.Read(max_bytes, [&](std::span<const std::byte> b) {
        out.emplace_back(reinterpret_cast<const char*>(b.data()), b.size());
      });
      EXPECT_TRUE(n);
      if (!n || n.value() == 0) break;
    }
    return out;
  }
  size_t FilesOnDisk() const {
    if (!std::filesystem::exists(dir_)) return 0;
    size_t n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir_)) ++n;
    return n;
  }

  FaultyFs fs_;
  std::filesystem::path dir_;
};

TEST_F(PageFileTest, ReadsBackInAppendOrderAcrossFilesAndDeletesBehindTheReader) {
  PageFile p(fs_, dir_.string(), 1u << 20);
  std::vector<std::string> want;
  for (int i = 0; i < 40000; ++i) {
    want.push_back("message-" + std::to_string(i) + std::string(static_cast<size_t>(i % 97), 'x'));
    Put(p, want.back());
  }
  EXPECT_EQ(p.count(), 40000u);
  const size_t files_before = FilesOnDisk();
  EXPECT_GT(files_before, 1u);  // about 2.9 MB in 1 MiB files
  // Half, in small reads: files wholly behind the reader are gone.
  std::vector<std::string> got;
  while (got.size() < 20000) {
    ASSERT_TRUE(p.Read(4096, [&](std::span<const std::byte> b) {
      got.emplace_back(reinterpret_cast<const char*>(b.data()), b.size());
    }));
  }
  EXPECT_LT(FilesOnDisk(), files_before);
  EXPECT_EQ(FilesOnDisk(), p.file_count());
  for (auto& s : ReadAll(p)) got.push_back(std::move(s));
  EXPECT_EQ(got, want);
  EXPECT_EQ(p.count(), 0u);
  EXPECT_EQ(FilesOnDisk(), 0u);  // all read: nothing left on disk
}

TEST_F(PageFileTest, InterleavedAppendsAndReadsKeepOrder) {
  PageFile p(fs_, dir_.string(), 64u << 10);
  std::vector<std::string> want, got;
  int next = 0;
  for (int round = 0; round < 50; ++round) {
    for (int i = 0; i < 3000; ++i) {
      want.push_back(std::to_string(next++));
      Put(p, want.back());
    }
    ASSERT_TRUE(p.Read(8192, [&](std::span<const std::byte> b) {
      got.emplace_back(reinterpret_cast<const char*>(b.data()), b.size());
    }));
  }
  for (auto& s : ReadAll(p)) got.push_back(std::move(s));
  EXPECT_EQ(got, want);
}

TEST_F(PageFileTest, ARecordLargerThanTheReadChunkComesBackWhole) {
  PageFile p(fs_, dir_.string(), 1u << 20);
  const std::string big(3u << 20, 'b');
  Put(p, "small");
  Put(p, big);
  Put(p, "after");
  auto got = ReadAll(p, 16);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], "small");
  EXPECT_EQ(got[1], big);
  EXPECT_EQ(got[2], "after");
}

TEST_F(PageFileTest, FailedWritesKeepRecordsInMemoryAndNothingIsLost) {
  PageFile p(fs_, dir_.string(), 1u << 20);
  std::vector<std::string> want;
  fs_.FailAppends(3, std::errc::no_space_on_device, 100);
  for (int i = 0; i < 20000; ++i) {
    want.push_back("m" + std::to_string(i) + std::string(40, 'y'));
    Put(p, want.back());
  }
  // Some reads while the writes failed, then the rest once the disk takes writes again.
  std::vector<std::string> got;
  ASSERT_TRUE(p.Read(1000, [&](std::span<const std::byte> b) {
    got.emplace_back(reinterpret_cast<const char*>(b.data()), b.size());
  }));
  for (int i = 20000; i < 30000; ++i) {
    want.push_back("m" + std::to_string(i));
    Put(p, want.back());
  }
  for (auto& s : ReadAll(p)) got.push_back(std::move(s));
  EXPECT_EQ(got, want);
}

TEST_F(PageFileTest, TheFolderGoesWithThePageFile) {
  {
    PageFile p(fs_, dir_.string(), 1u << 20);
    for (int i = 0; i < 10000; ++i) Put(p, std::string(100, 'z'));
    EXPECT_GT(FilesOnDisk(), 0u);
  }
  EXPECT_FALSE(std::filesystem::exists(dir_));
}

TEST_F(PageFileTest, ACorruptLengthIsAnErrorNotACrash) {
  PageFile p(fs_, dir_.string(), 1u << 20);
  for (int i = 0; i < 10000; ++i) Put(p, std::string(100, 'c'));
  ASSERT_GT(FilesOnDisk(), 0u);
  // Overwrite the first record's length with a huge value.
  auto first = std::filesystem::directory_iterator(dir_)->path();
  FILE* f = std::fopen(first.c_str(), "r+b");
  ASSERT_NE(f, nullptr);
  const unsigned char bad[4] = {0x7f, 0xff, 0xff, 0xff};
  std::fwrite(bad, 1, 4, f);
  std::fclose(f);
  auto r = p.Read(1u << 20, [](std::span<const std::byte>) {});
  EXPECT_FALSE(r);
}

}  // namespace
}  // namespace warren::storage
