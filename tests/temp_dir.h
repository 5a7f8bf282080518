#pragma once
// TempDir: a fresh directory under the system's temporary folder, removed with everything
// in it when the test ends; read_text reads back a file a test wrote or produced.
//
//   TempDir dir;
//   const std::string cfg = dir.write("config.json", "{}");   // the file's path
//   save_t5(model, dir / "ckpt");
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>

#include <gtest/gtest.h>

namespace sp {

struct TempDir {
  std::filesystem::path path;

  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "sp_test_XXXXXX").string();
    EXPECT_NE(::mkdtemp(tmpl.data()), nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // The path of name inside the directory.
  std::string operator/(const std::string& name) const { return (path / name).string(); }
  // Writes contents to name (binary) and returns its path.
  std::string write(const std::string& name, const std::string& contents) const {
    const std::string p = *this / name;
    std::ofstream(p, std::ios::binary) << contents;
    return p;
  }
};

// The whole file as bytes; empty when it cannot be read.
inline std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace sp
