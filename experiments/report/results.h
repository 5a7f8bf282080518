#pragma once
// DIR/results.jsonl: the runner's append-only record of finished work, one JSON object per
// line and per (trial, stage, task, split):
//   {"trial": "t0003", "point": {"peft.length": 20, "peft.init": "class_label"}, "seed": 1,
//    "stage": "tune", "task": "wic_wordnet", "split": "validation", "step": 300,
//    "metrics": {"accuracy": 71.25}, "method": "prompt_tuning",
//    "trainable_params": 2560, "total_params": 4194432, "trainable_share": 0.00061,
//    "seconds": {"tune": 182.4}, "finished": "2026-11-26T10:41:07.250Z"}
// "point" holds the swept keys only (the seed apart), so the reports can group by it.
// The file is only ever appended to; a reader keeps the last line per (trial, stage, task,
// split), so a line written twice (a crash between the append and the trial's done marker)
// counts once.
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace sp {

struct ResultRecord {
  std::string trial;
  nlohmann::json point = nlohmann::json::object();  // swept key -> value
  int64_t seed = 0;
  std::string stage;  // "tune" or "eval"
  std::string task;
  std::string split;
  int64_t step = -1;  // the training step the metrics belong to; -1 when not applicable
  std::map<std::string, double> metrics;
  std::string method;
  int64_t trainable_params = 0;
  int64_t total_params = 0;
  double trainable_share = 0;  // trainable / total (the paper's Figure 4), 0 when unknown
  std::map<std::string, double> seconds;  // wall time per stage of this trial
  std::string finished;                   // UTC time, ISO 8601
};

// The x axis a spec may plot against without sweeping it (`sweep.x: total_params`, the
// paper's Figure 1 axis): each record's total parameter count.
constexpr const char* kTotalParamsAxis = "total_params";

// The records with kTotalParamsAxis added to the point of each that counts its parameters
// (total_params > 0); the others are left as they are.
std::vector<ResultRecord> with_total_params_axis(std::vector<ResultRecord> records);

nlohmann::json to_json(const ResultRecord& r);
// source and line name the record in errors ("results.jsonl:4: ...").
ResultRecord result_from_json(const nlohmann::json& j, const std::string& source, int64_t line);

// Appends one line (write + fsync on a file opened for appending, so an interrupted run
// leaves at most one partial last line, which read_results skips and the next append cuts
// off; a last line that parses but lacks its newline is ended instead).
void append_result(const std::string& path, const ResultRecord& r);

// Every record of path in file order, the last one per (trial, stage, task, split) kept at
// the position of its last occurrence. A missing file is an empty list; a malformed line
// throws naming the line, except a last line without its newline that does not parse (an
// interrupted append), which is skipped.
std::vector<ResultRecord> read_results(const std::string& path);

// The current UTC time as "YYYY-MM-DDTHH:MM:SS.mmmZ" (milliseconds: a trial's records are
// told from an earlier run's by it).
std::string utc_timestamp();

}  // namespace sp
