#include "experiments/training/checkpoint_dir.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "models/io/atomic_file.h"
#include "tensor/error.h"

namespace sp::checkpoint_dir {
namespace fs = std::filesystem;

namespace {
constexpr const char* kPrefix = "step-";
constexpr const char* kTemporaryPrefix = ".tmp-";
}  // namespace

std::string name(int64_t step) { return kPrefix + std::to_string(step); }

std::optional<int64_t> parse_name(const std::string& n) {
  const std::string prefix = kPrefix;
  if (n.size() <= prefix.size() || n.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  int64_t step = 0;
  const char* first = n.data() + prefix.size();
  const char* last = n.data() + n.size();
  auto [ptr, ec] = std::from_chars(first, last, step);
  if (ec != std::errc() || ptr != last || step < 0 || *first == '+') return std::nullopt;
  // Only the canonical spelling: "step-007" is somebody else's directory.
  if (name(step) != n) return std::nullopt;
  return step;
}

std::vector<int64_t> list_steps(const std::string& dir) {
  std::vector<int64_t> steps;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return steps;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (!entry.is_directory()) continue;
    if (auto s = parse_name(entry.path().filename().string())) steps.push_back(*s);
  }
  std::sort(steps.begin(), steps.end());
  return steps;
}

std::optional<int64_t> resume_step(const std::string& dir) {
  std::ifstream in(fs::path(dir) / "latest");
  std::string line;
  if (in && std::getline(in, line)) {
    if (auto s = parse_name(line); s && fs::is_regular_file(fs::path(dir) / line / "state.json"))
      return s;
  }
  std::vector<int64_t> steps = list_steps(dir);
  for (auto it = steps.rbegin(); it != steps.rend(); ++it)
    if (fs::is_regular_file(fs::path(dir) / name(*it) / "state.json")) return *it;
  return std::nullopt;
}

void write_latest(const std::string& dir, int64_t step) {
  write_file_atomic((fs::path(dir) / "latest").string(), name(step) + "\n", "[trainer]");
}

void remove_temporaries(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return;
  std::vector<fs::path> stale;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().filename().string().rfind(kTemporaryPrefix, 0) == 0)
      stale.push_back(entry.path());
  for (const auto& p : stale) fs::remove_all(p);
}

void sync_path(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

void commit_directory(const std::string& tmp, const std::string& final_path, const char* tag) {
  sync_path(tmp);
  const auto failed = [&](const char* what) {
    fail(str_cat(tag, " cannot ", what, " ", tmp, " and ", final_path, ": ",
                 std::system_category().message(errno)));
  };
  const fs::path parent_path = fs::path(final_path).parent_path();
  const std::string parent = parent_path.empty() ? "." : parent_path.string();
  // Swap the two in one step, so final_path names a complete directory at every moment:
  // the old one ends under tmp's temporary name, removed below or, after a crash, by
  // remove_temporaries. When final_path does not exist yet, a plain rename.
  if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, final_path.c_str(), RENAME_EXCHANGE) == 0) {
    sync_path(parent);
    std::error_code ec;
    fs::remove_all(tmp, ec);
    SP_CHECK(!ec, tag, " cannot remove the replaced ", final_path, " (now ", tmp,
             "): ", ec.message());
    return;
  }
  if (errno == EINVAL || errno == ENOSYS) {
    // A file system without the exchange: move the old directory aside first (a crash
    // between the two renames leaves the previous step-<s> to resume from).
    const std::string old = str_cat(tmp, "-old");
    std::error_code ec;
    fs::remove_all(old, ec);
    if (::rename(final_path.c_str(), old.c_str()) != 0 && errno != ENOENT) failed("move aside");
    if (::rename(tmp.c_str(), final_path.c_str()) != 0) failed("rename");
    fs::remove_all(old, ec);
  } else if (errno != ENOENT || ::rename(tmp.c_str(), final_path.c_str()) != 0) {
    failed("swap");
  }
  sync_path(parent);
}

std::string make_temporary(const std::string& parent, const std::string& what, const char* tag) {
  const fs::path tmp =
      fs::path(parent) / (std::string(kTemporaryPrefix) + what + "-" + std::to_string(::getpid()));
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  SP_CHECK(!ec, tag, " cannot create the directory ", tmp.string(), ": ", ec.message());
  return tmp.string();
}

}  // namespace sp::checkpoint_dir
