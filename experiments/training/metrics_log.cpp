#include "experiments/training/metrics_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <system_error>

#include "models/io/atomic_file.h"
#include "tensor/error.h"

namespace sp {

namespace {

// The line's step, or -1 when it is not an object with an integer step (a torn line).
int64_t line_step(const std::string& line, nlohmann::json* parsed = nullptr) {
  nlohmann::json v = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!v.is_object() || !v.contains("step") || !v["step"].is_number_integer()) return -1;
  const int64_t step = v["step"].get<int64_t>();
  if (parsed) *parsed = std::move(v);
  return step;
}

}  // namespace

MetricsLog::~MetricsLog() { close(); }

void MetricsLog::open(const std::string& path, int64_t last_step) {
  close();
  path_ = path;
  {
    std::ifstream in(path, std::ios::binary);
    if (in) {
      std::string kept, line;
      bool dropped = false;
      while (std::getline(in, line)) {
        // A line without its newline was torn by a crash, whatever it parses as.
        const bool complete = !in.eof();
        const int64_t step = complete ? line_step(line) : -1;
        if (step >= 0 && step <= last_step) {
          kept += line;
          kept += '\n';
        } else if (!line.empty()) {
          dropped = true;
        }
      }
      in.close();
      if (dropped) write_file_atomic(path, kept, "[metrics]");
    }
  }
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  SP_CHECK(fd_ >= 0, "[metrics] cannot open ", path,
           " for appending: ", std::system_category().message(errno));
}

void MetricsLog::append(const nlohmann::json& line) {
  SP_CHECK(fd_ >= 0, "[metrics] append before open");
  const std::string s = line.dump() + "\n";
  const char* p = s.data();
  size_t left = s.size();
  while (left > 0) {
    const ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail(str_cat("[metrics] cannot write ", path_, ": ", std::system_category().message(errno)));
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
}

void MetricsLog::sync() {
  if (fd_ >= 0) ::fsync(fd_);
}

void MetricsLog::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

std::vector<nlohmann::json> read_metrics(const std::string& path) {
  std::vector<nlohmann::json> lines;
  std::ifstream in(path, std::ios::binary);
  std::string line;
  while (std::getline(in, line)) {
    nlohmann::json v;
    if (line_step(line, &v) >= 0) lines.push_back(std::move(v));
  }
  return lines;
}

}  // namespace sp
