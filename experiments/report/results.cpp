#include "experiments/report/results.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <set>
#include <sstream>
#include <tuple>

#include "tensor/error.h"

namespace sp {

std::vector<ResultRecord> with_total_params_axis(std::vector<ResultRecord> records) {
  for (ResultRecord& r : records)
    if (r.total_params > 0) r.point[kTotalParamsAxis] = r.total_params;
  return records;
}

nlohmann::json to_json(const ResultRecord& r) {
  nlohmann::json j;
  j["trial"] = r.trial;
  j["point"] = r.point;
  j["seed"] = r.seed;
  j["stage"] = r.stage;
  j["task"] = r.task;
  j["split"] = r.split;
  j["step"] = r.step;
  j["metrics"] = r.metrics;
  j["method"] = r.method;
  j["trainable_params"] = r.trainable_params;
  j["total_params"] = r.total_params;
  j["trainable_share"] = r.trainable_share;
  j["seconds"] = r.seconds;
  j["finished"] = r.finished;
  return j;
}

namespace {

[[noreturn]] void bad(const std::string& source, int64_t line, const std::string& what) {
  fail(str_cat(source, ":", line, ": ", what));
}

template <typename T>
T field(const nlohmann::json& j, const char* key, const std::string& source, int64_t line,
        bool required, T fallback) {
  auto it = j.find(key);
  if (it == j.end()) {
    if (required) bad(source, line, str_cat("[results] expected \"", key, "\""));
    return fallback;
  }
  try {
    return it->get<T>();
  } catch (const nlohmann::json::exception&) {
    bad(source, line, str_cat("[results] \"", key, "\" has the wrong type: ", it->dump()));
  }
}

std::map<std::string, double> number_map(const nlohmann::json& j, const char* key,
                                         const std::string& source, int64_t line) {
  std::map<std::string, double> out;
  auto it = j.find(key);
  if (it == j.end()) return out;
  if (!it->is_object()) bad(source, line, str_cat("[results] \"", key, "\" must be an object"));
  for (auto& [k, v] : it->items()) {
    // A metric that came out as NaN is written as null by nlohmann::json.
    if (v.is_null()) {
      out[k] = std::numeric_limits<double>::quiet_NaN();
      continue;
    }
    if (!v.is_number())
      bad(source, line,
          str_cat("[results] \"", key, "\".\"", k, "\" must be a number, got ", v.dump()));
    out[k] = v.get<double>();
  }
  return out;
}

}  // namespace

ResultRecord result_from_json(const nlohmann::json& j, const std::string& source, int64_t line) {
  if (!j.is_object()) bad(source, line, "[results] expected a JSON object");
  ResultRecord r;
  r.trial = field<std::string>(j, "trial", source, line, true, "");
  r.stage = field<std::string>(j, "stage", source, line, true, "");
  if (auto it = j.find("point"); it != j.end()) {
    if (!it->is_object()) bad(source, line, "[results] \"point\" must be an object");
    r.point = *it;
  }
  r.seed = field<int64_t>(j, "seed", source, line, false, 0);
  r.task = field<std::string>(j, "task", source, line, false, "");
  r.split = field<std::string>(j, "split", source, line, false, "");
  r.step = field<int64_t>(j, "step", source, line, false, -1);
  r.metrics = number_map(j, "metrics", source, line);
  r.method = field<std::string>(j, "method", source, line, false, "");
  r.trainable_params = field<int64_t>(j, "trainable_params", source, line, false, 0);
  r.total_params = field<int64_t>(j, "total_params", source, line, false, 0);
  r.trainable_share = field<double>(j, "trainable_share", source, line, false, 0.0);
  r.seconds = number_map(j, "seconds", source, line);
  r.finished = field<std::string>(j, "finished", source, line, false, "");
  return r;
}

namespace {

// An interrupted append leaves a last line without its newline: cut it off, so the next
// record starts a line of its own instead of being glued onto the partial one. A last line
// that parses (read_results counts it: a file edited by hand) only gets its newline.
void end_last_line(int fd, const std::string& path) {
  const off_t size = ::lseek(fd, 0, SEEK_END);
  SP_CHECK(size >= 0, "[results] cannot seek in ", path, ": ", std::strerror(errno));
  off_t keep = size;
  char c = '\n';
  std::string tail;  // the last line, reversed
  while (keep > 0) {
    const ssize_t n = ::pread(fd, &c, 1, keep - 1);
    if (n < 0 && errno == EINTR) continue;
    SP_CHECK(n == 1, "[results] cannot read ", path, ": ", std::strerror(errno));
    if (c == '\n') break;
    tail += c;
    --keep;
  }
  if (keep == size) return;
  std::reverse(tail.begin(), tail.end());
  if (!nlohmann::json::parse(tail, nullptr, /*allow_exceptions=*/false).is_discarded()) {
    SP_CHECK(::write(fd, "\n", 1) == 1, "[results] cannot append to ", path, ": ",
             std::strerror(errno));
    return;
  }
  SP_CHECK(::ftruncate(fd, keep) == 0, "[results] cannot cut the partial last line of ", path, ": ",
           std::strerror(errno));
}

}  // namespace

void append_result(const std::string& path, const ResultRecord& r) {
  const std::string text = to_json(r).dump() + "\n";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  SP_CHECK(fd >= 0, "[results] cannot open ", path, " for appending: ", std::strerror(errno));
  try {
    end_last_line(fd, path);
  } catch (...) {
    ::close(fd);
    throw;
  }
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      ::close(fd);
      fail(str_cat("[results] cannot append to ", path, ": ", std::strerror(err)));
    }
    done += static_cast<size_t>(n);
  }
  ::fsync(fd);
  ::close(fd);
}

std::vector<ResultRecord> read_results(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();

  std::vector<ResultRecord> all;
  size_t pos = 0;
  int64_t line = 0;
  while (pos < text.size()) {
    ++line;
    const size_t end = text.find('\n', pos);
    const bool complete = end != std::string::npos;
    const std::string row = text.substr(pos, complete ? end - pos : std::string::npos);
    pos = complete ? end + 1 : text.size();
    if (row.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(row);
    } catch (const nlohmann::json::parse_error& e) {
      if (!complete) break;  // the partial last line of an interrupted append
      bad(path, line, str_cat("[results] not JSON: ", parse_error_text(e)));
    }
    all.push_back(result_from_json(j, path, line));
  }

  // Keep the last record per (trial, stage, task, split).
  std::set<std::tuple<std::string, std::string, std::string, std::string>> seen;
  std::vector<ResultRecord> kept;
  for (auto it = all.rbegin(); it != all.rend(); ++it)
    if (seen.insert({it->trial, it->stage, it->task, it->split}).second) kept.push_back(*it);
  std::reverse(kept.begin(), kept.end());
  return kept;
}

std::string utc_timestamp() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const int64_t ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[40];
  const size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms));
  return buf;
}

}  // namespace sp
