#include "models/io/atomic_file.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "tensor/error.h"

namespace sp {
namespace {

// True when no process has this id (kill with signal 0 checks without sending anything).
bool process_is_gone(pid_t pid) { return ::kill(pid, 0) != 0 && errno == ESRCH; }

// Temporary files are "<name>.tmp.<pid>.<serial>": the serial tells apart two writers of one
// path in one process, which would otherwise truncate and mix each other's file.
std::atomic<uint64_t> g_temp_serial{0};

// Removes "<name>.tmp.<pid>[.<serial>]" files beside path that a process killed mid-write
// left behind: those of processes that no longer exist. Best effort; a live writer's file
// is kept.
void remove_stale_temporaries(const std::filesystem::path& path) {
  namespace fs = std::filesystem;
  const std::string prefix = path.filename().string() + ".tmp.";
  const pid_t self = ::getpid();
  std::error_code ec;
  fs::directory_iterator it(path.has_parent_path() ? path.parent_path() : fs::path("."), ec);
  for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    pid_t pid = 0;
    const char* first = name.data() + prefix.size();
    const char* last = name.data() + name.size();
    std::from_chars_result r = std::from_chars(first, last, pid);
    if (r.ec == std::errc() && r.ptr != last && *r.ptr == '.') {
      uint64_t serial = 0;
      r = std::from_chars(r.ptr + 1, last, serial);
    }
    if (r.ec != std::errc() || r.ptr != last || pid <= 0 || pid == self) continue;
    std::error_code ignored;
    if (process_is_gone(pid)) fs::remove(it->path(), ignored);
  }
}

}  // namespace

AtomicFile::AtomicFile(std::string path, std::string tag)
    : path_(std::move(path)), tag_(std::move(tag)) {
  temp_ = str_cat(path_, ".tmp.", ::getpid(), ".", ++g_temp_serial);
  fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) fail_errno("cannot create the temporary file " + temp_);
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(temp_.c_str());
}

void AtomicFile::fail_errno(const std::string& what) {
  const std::string reason = std::system_category().message(errno);
  fail(str_cat(tag_, " ", path_, ": ", what, ": ", reason));
}

void AtomicFile::write(const void* data, size_t nbytes) {
  SP_CHECK(fd_ >= 0 && !committed_, tag_, " ", path_, ": write after commit");
  const char* p = static_cast<const char*>(data);
  while (nbytes > 0) {
    // Linux writes at most ~2 GiB per call; large tensors take several.
    const ssize_t n = ::write(fd_, p, nbytes);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail_errno("cannot write " + temp_);
    }
    p += n;
    nbytes -= static_cast<size_t>(n);
  }
}

void AtomicFile::commit() {
  SP_CHECK(fd_ >= 0 && !committed_, tag_, " ", path_, ": commit twice");
  if (::fsync(fd_) != 0) fail_errno("cannot flush " + temp_);
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail_errno("cannot close " + temp_);
  if (::rename(temp_.c_str(), path_.c_str()) != 0)
    fail_errno("cannot rename " + temp_ + " over it");
  committed_ = true;
  // The rename is durable only once the directory is flushed; best effort, the file is
  // already complete and in place.
  std::filesystem::path dir = std::filesystem::path(path_).parent_path();
  if (dir.empty()) dir = ".";
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  remove_stale_temporaries(path_);
}

void write_file_atomic(const std::string& path, std::string_view contents, const std::string& tag) {
  AtomicFile f(path, tag);
  f.write(contents);
  f.commit();
}

std::string read_file(const std::string& path, const std::string& tag) {
  std::ifstream in(path, std::ios::binary);
  SP_CHECK(in.is_open(), tag, " cannot read ", path, ": ", std::strerror(errno));
  std::ostringstream s;
  s << in.rdbuf();
  SP_CHECK(!in.bad(), tag, " cannot read ", path, ": the read failed");
  return s.str();
}

}  // namespace sp
