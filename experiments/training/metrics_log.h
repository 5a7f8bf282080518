#pragma once
// metrics.jsonl: one JSON object per line, each with an integer "step". Lines are appended
// with one write() each (O_APPEND), flushed to disk by sync() before every checkpoint, and
// on resume the file is cut back to the checkpoint's step (lines after it, and a partial
// last line left by a crash, are dropped) so a resumed run never repeats a step.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace sp {

class MetricsLog {
 public:
  MetricsLog() = default;
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;

  // Keeps the lines of path whose "step" is <= last_step (rewriting the file atomically
  // when any is dropped), then opens it for appending. last_step 0 empties it.
  void open(const std::string& path, int64_t last_step);
  void append(const nlohmann::json& line);
  void sync();
  void close();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
};

// Every line of a metrics file that parses as an object with a "step" (tools, tests).
std::vector<nlohmann::json> read_metrics(const std::string& path);

}  // namespace sp
