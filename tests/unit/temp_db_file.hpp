#pragma once
// A fresh database file under the test temp dir, removed (with its WAL and shm) at the end.

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <stdexcept>
#include <string>

namespace pix::test {

class TempDbFile {
 public:
  explicit TempDbFile(const std::string& stem = "pix_test") {
    std::string pattern = ::testing::TempDir() + stem + "_XXXXXX";
    const int fd = mkstemp(pattern.data());
    if (fd < 0) throw std::runtime_error("mkstemp failed for " + pattern);
    close(fd);
    path_ = pattern;
  }
  ~TempDbFile() {
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) std::remove((path_ + suffix).c_str());
  }
  TempDbFile(const TempDbFile&) = delete;
  TempDbFile& operator=(const TempDbFile&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace pix::test
