#include "experiments/report/summary.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <set>
#include <tuple>

#include "tensor/error.h"

namespace sp {

bool point_value_less(const nlohmann::json& a, const nlohmann::json& b) {
  if (a.is_number() && b.is_number()) return a.get<double>() < b.get<double>();
  if (a.is_number() != b.is_number()) return a.is_number();
  return cell_text(a) < cell_text(b);
}

namespace {

bool point_less(const nlohmann::json& a, const nlohmann::json& b) {
  // Both are objects; nlohmann::json iterates objects in key order.
  auto ia = a.begin(), ib = b.begin();
  for (; ia != a.end() && ib != b.end(); ++ia, ++ib) {
    if (ia.key() != ib.key()) return ia.key() < ib.key();
    if (point_value_less(ia.value(), ib.value())) return true;
    if (point_value_less(ib.value(), ia.value())) return false;
  }
  return ia == a.end() && ib != b.end();
}

std::string csv_cell(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string number_text(double v) {
  if (std::isnan(v)) return "nan";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

}  // namespace

std::string cell_text(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "";
  return v.dump();
}

std::vector<std::string> swept_keys(const std::vector<ResultRecord>& results) {
  std::set<std::string> keys;
  for (const ResultRecord& r : results)
    for (auto it = r.point.begin(); it != r.point.end(); ++it) keys.insert(it.key());
  return {keys.begin(), keys.end()};
}

std::vector<SummaryRow> summarize(const std::vector<ResultRecord>& results) {
  struct Group {
    SummaryRow row;
    std::vector<std::pair<int64_t, double>> values;  // (seed, value)
  };
  // Keyed by the serialised identity; ordering happens after.
  std::map<std::string, Group> groups;
  for (const ResultRecord& r : results) {
    for (const auto& [metric, value] : r.metrics) {
      const std::string id =
          nlohmann::json::array({r.stage, r.task, r.split, r.point, metric}).dump();
      Group& g = groups[id];
      if (g.values.empty() && g.row.metric.empty()) {
        g.row.stage = r.stage;
        g.row.task = r.task;
        g.row.split = r.split;
        g.row.point = r.point;
        g.row.metric = metric;
      }
      g.values.emplace_back(r.seed, value);
    }
  }
  std::vector<SummaryRow> rows;
  for (auto& [id, g] : groups) {
    SummaryRow row = g.row;
    // The mean as the first value plus the mean offset from it: seeds that agree give that
    // value exactly, and so a std of exactly 0 (summing 11.11... three times and dividing
    // by 3 does not give 11.11... back).
    double shift = 0, sum = 0;
    for (const auto& [seed, v] : g.values) {
      if (std::isnan(v)) continue;
      if (row.n == 0 && std::isfinite(v)) shift = v;
      sum += v - shift;
      ++row.n;
      row.seeds.push_back(seed);
    }
    std::sort(row.seeds.begin(), row.seeds.end());
    row.mean =
        row.n ? shift + sum / static_cast<double>(row.n) : std::numeric_limits<double>::quiet_NaN();
    double sq = 0;
    for (const auto& [seed, v] : g.values)
      if (!std::isnan(v)) sq += (v - row.mean) * (v - row.mean);
    row.std = row.n > 1    ? std::sqrt(sq / static_cast<double>(row.n - 1))
              : row.n == 1 ? 0.0
                           : std::numeric_limits<double>::quiet_NaN();
    rows.push_back(std::move(row));
  }
  std::sort(rows.begin(), rows.end(), [](const SummaryRow& a, const SummaryRow& b) {
    if (std::tie(a.stage, a.task, a.split) != std::tie(b.stage, b.task, b.split))
      return std::tie(a.stage, a.task, a.split) < std::tie(b.stage, b.task, b.split);
    if (point_less(a.point, b.point)) return true;
    if (point_less(b.point, a.point)) return false;
    return a.metric < b.metric;
  });
  return rows;
}

std::string summary_csv(const std::vector<SummaryRow>& rows, const std::vector<std::string>& keys) {
  std::string out = "stage,task,split";
  for (const std::string& k : keys) out += str_cat(",", csv_cell(k));
  out += ",metric,mean,std,n\n";
  for (const SummaryRow& r : rows) {
    out += csv_cell(r.stage) + "," + csv_cell(r.task) + "," + csv_cell(r.split);
    for (const std::string& k : keys) {
      auto it = r.point.find(k);
      out += str_cat(",", it == r.point.end() ? std::string() : csv_cell(cell_text(*it)));
    }
    out += str_cat(",", csv_cell(r.metric), ",", number_text(r.mean), ",", number_text(r.std), ",",
                   r.n, "\n");
  }
  return out;
}

}  // namespace sp
