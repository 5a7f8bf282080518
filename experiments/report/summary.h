#pragma once
// summary.csv: mean, standard deviation and count over seeds, per sweep point and metric.
//
//   stage,task,split,peft.init,peft.length,metric,mean,std,n
//   tune,wic_wordnet,validation,class_label,5,accuracy,71.25,2.474873734,2
//
// The standard deviation is the sample one (n - 1 in the denominator), 0 for a single
// seed; NaN metrics (a run that produced none) are left out of the mean and of n, and a
// row with none left (n = 0) has NaN for both mean and std.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "experiments/report/results.h"

namespace sp {

struct SummaryRow {
  std::string stage, task, split;
  nlohmann::json point;  // swept key -> value, the seed apart
  std::string metric;
  double mean = 0;
  double std = 0;
  int64_t n = 0;
  std::vector<int64_t> seeds;  // the seeds that went into the row, ascending
};

// Rows in a stable order: stage, task, split, then the point (numbers by value, strings
// lexically, key by key), then the metric.
std::vector<SummaryRow> summarize(const std::vector<ResultRecord>& results);

// The union of the points' keys, sorted: the swept keys of the run.
std::vector<std::string> swept_keys(const std::vector<ResultRecord>& results);

// A point value as a table cell: strings bare, numbers as JSON writes them.
std::string cell_text(const nlohmann::json& v);

// The CSV text (header + one line per row); cells with a comma, quote or line break are
// quoted.
std::string summary_csv(const std::vector<SummaryRow>& rows, const std::vector<std::string>& keys);

// Orders two point values: numbers by value before strings, strings lexically.
bool point_value_less(const nlohmann::json& a, const nlohmann::json& b);

}  // namespace sp
