#include "models/io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "tensor/error.h"

namespace sp {

namespace {

std::string errno_text() { return std::system_category().message(errno); }

// Closes a descriptor on every path out of open() (a mapping outlives it).
struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

std::shared_ptr<MappedFile> MappedFile::open(const std::string& path, const std::string& tag) {
  auto fail_at = [&](const auto&... args) { fail(str_cat(tag, " ", path, ": ", args...)); };
  Fd fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (fd.fd < 0) fail_at("cannot open: ", errno_text());
  struct stat st {};
  if (::fstat(fd.fd, &st) != 0) fail_at("cannot stat: ", errno_text());
  if (!S_ISREG(st.st_mode)) fail_at("not a regular file");
  const auto size = static_cast<size_t>(st.st_size);
  if (size == 0) return std::shared_ptr<MappedFile>(new MappedFile(nullptr, 0));
  void* addr = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd.fd, 0);
  if (addr == MAP_FAILED) fail_at("cannot memory-map ", size, " bytes: ", errno_text());
  return std::shared_ptr<MappedFile>(new MappedFile(addr, size));
}

MappedFile::~MappedFile() {
  if (addr_) ::munmap(addr_, size_);
}

}  // namespace sp
