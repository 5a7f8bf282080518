#pragma once
// Writing a file so that readers see either the old file or the complete new one, never a
// partial one: the bytes go to path + ".tmp.<pid>.<n>" in the same directory (same file
// system, so the rename is atomic; n tells apart writers of one path in one process), then
// fsync, rename over path, fsync the directory. A commit also removes the temporaries of
// path that processes killed mid-write left (".tmp.<pid>[.<n>]" of a process that no
// longer exists).
#include <cstddef>
#include <string>
#include <string_view>

namespace sp {

class AtomicFile {
 public:
  // tag starts every message, e.g. "[safetensors]". Throws when the temporary file cannot
  // be created (a missing directory, say).
  AtomicFile(std::string path, std::string tag);
  // Removes the temporary file unless commit() succeeded: a failed write leaves any file
  // at path untouched.
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t nbytes);
  void write(std::string_view s) { write(s.data(), s.size()); }
  // Flushes to disk and renames over path.
  void commit();

  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_; }

 private:
  [[noreturn]] void fail_errno(const std::string& what);
  std::string path_;
  std::string tag_;
  std::string temp_;
  int fd_ = -1;
  bool committed_ = false;
};

// Writes contents to path atomically (index files, configs).
void write_file_atomic(const std::string& path, std::string_view contents, const std::string& tag);

// The whole file at path, as bytes; throws "<tag> cannot read <path>: <reason>".
std::string read_file(const std::string& path, const std::string& tag);

}  // namespace sp
