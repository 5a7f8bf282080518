#include "experiments/report/task_average.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>

#include "experiments/tasks/task.h"
#include "tensor/suggest.h"

namespace sp {
namespace {

// The metrics of m named prefix + <name>, as <name>; without a prefix, the task's own
// metrics (an ensemble's member columns left out).
Metrics with_prefix(const std::map<std::string, double>& m, const std::string& prefix) {
  Metrics out;
  for (const auto& [name, value] : m) {
    if (prefix.empty() ? name.starts_with("members_") : !name.starts_with(prefix)) continue;
    out[name.substr(prefix.size())] = value;
  }
  return out;
}

}  // namespace

std::vector<ResultRecord> task_average_records(const std::vector<ResultRecord>& results,
                                               const std::set<std::string>& swept_with_task) {
  struct Group {
    ResultRecord base;                                              // stage, split, point, seed
    std::map<std::string, std::map<std::string, double>> per_task;  // task -> metrics
  };
  std::vector<std::string> order;  // group ids in the order first seen
  std::map<std::string, Group> groups;
  std::map<std::pair<std::string, std::string>, std::set<std::string>> tasks;  // (stage, split)
  std::map<std::string, std::string> tuned_task;  // trial -> the task of its "tune" record
  for (const ResultRecord& r : results)
    if (r.stage == "tune") tuned_task[r.trial] = ascii_lowercase(r.task);
  for (const ResultRecord& r : results) {
    if (!r.point.contains(kTaskSweepKey) && !r.point.contains(kTaskConfigSweepKey)) continue;
    // Without a "tune" record (results of older runs), a built-in task names itself.
    const auto tuned = tuned_task.find(r.trial);
    const auto swept = r.point.find(kTaskSweepKey);
    const std::string own = tuned != tuned_task.end() ? tuned->second
                            : swept != r.point.end() && swept->is_string()
                                ? ascii_lowercase(swept->get<std::string>())
                                : std::string();
    if (own != ascii_lowercase(r.task)) continue;
    nlohmann::json point = r.point;
    point.erase(kTaskSweepKey);
    point.erase(kTaskConfigSweepKey);
    for (const std::string& k : swept_with_task) point.erase(k);
    const std::string id = nlohmann::json::array({r.stage, r.split, point, r.seed}).dump();
    auto [it, added] = groups.try_emplace(id);
    if (added) {
      order.push_back(id);
      it->second.base.stage = r.stage;
      it->second.base.split = r.split;
      it->second.base.point = point;
      it->second.base.seed = r.seed;
    }
    it->second.per_task[ascii_lowercase(r.task)] = r.metrics;
    tasks[{r.stage, r.split}].insert(ascii_lowercase(r.task));
  }
  const std::set<std::string> superglue = {"boolq",  "cb",  "copa", "multirc",
                                           "record", "rte", "wic",  "wsc"};
  std::vector<ResultRecord> out;
  for (const std::string& id : order) {
    const Group& g = groups.at(id);
    const std::set<std::string>& all = tasks.at({g.base.stage, g.base.split});
    if (all.size() < 2 || g.per_task.size() != all.size()) continue;
    ResultRecord avg = g.base;
    avg.task = all == superglue ? kSuperGlueTask : kTaskAverageTask;
    for (const std::string prefix : {"", "members_mean_", "members_best_"}) {
      std::map<std::string, Metrics> per_task;
      for (const auto& [task, metrics] : g.per_task) {
        Metrics m = with_prefix(metrics, prefix);
        if (m.empty()) break;
        per_task[task] = std::move(m);
      }
      if (per_task.size() == all.size())
        avg.metrics[prefix + "score"] = benchmark_average(per_task);
    }
    if (!avg.metrics.empty()) out.push_back(std::move(avg));
  }
  return out;
}

}  // namespace sp
