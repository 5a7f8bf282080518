#include "experiments/tasks/task.h"

#include <algorithm>
#include <string_view>
#include <unordered_map>

#include "tensor/error.h"
#include "tensor/suggest.h"

namespace sp {
namespace {

std::map<std::string, TaskFactory>& registry() {
  static std::map<std::string, TaskFactory> tasks;
  return tasks;
}

}  // namespace

TaskRegistrar::TaskRegistrar(std::string name, TaskFactory factory) {
  auto [it, inserted] = registry().emplace(ascii_lowercase(name), std::move(factory));
  SP_CHECK(inserted, "[tasks] task '", name, "' is registered twice");
}

std::vector<TaskExample> Task::load(const std::string& split) const {
  std::vector<TaskExample> examples = read_split(split);
  std::unordered_map<std::string_view, size_t> first;
  first.reserve(examples.size());
  for (size_t i = 0; i < examples.size(); ++i) {
    const auto [it, added] = first.emplace(examples[i].id, i);
    if (added) continue;
    const std::string file = split_file(split);
    fail(str_cat("[tasks] ", name(), " split '", split, "'",
                 file.empty() ? "" : str_cat(" (", file, ")"), ": examples ", it->second + 1,
                 " and ", i + 1, " have the same id \"", examples[i].id,
                 "\"; ids come from the records' idx, which must be unique within a split"));
  }
  return examples;
}

std::vector<std::string> task_names() {
  std::vector<std::string> names;
  for (const auto& [name, factory] : registry()) names.push_back(name);
  return names;
}

std::unique_ptr<Task> make_task(const std::string& name, const TaskOptions& options) {
  auto it = registry().find(ascii_lowercase(name));
  if (it == registry().end()) {
    std::string known;
    for (const std::string& n : task_names()) known += (known.empty() ? "" : ", ") + n;
    fail(str_cat("[tasks] unknown task '", name, "'", did_you_mean(name, task_names()),
                 " (known: ", known, ")"));
  }
  return it->second(options);
}

void check_metric_name(const std::string& task, const std::vector<std::string>& names,
                       const std::string& metric, const std::string& what) {
  if (std::find(names.begin(), names.end(), metric) != names.end()) return;
  std::string list;
  for (const std::string& name : names) list += str_cat(list.empty() ? "" : ", ", name);
  fail(str_cat(what, " '", metric, "': task ", task, " reports ", list,
               did_you_mean(metric, names)));
}

std::vector<TaskExample> first_examples(std::vector<TaskExample> examples, int64_t n) {
  if (n <= 0 || static_cast<size_t>(n) >= examples.size()) return examples;
  size_t end = static_cast<size_t>(n);
  const std::string& group = examples[end - 1].group;
  while (!group.empty() && end < examples.size() && examples[end].group == group) ++end;
  examples.resize(end);
  return examples;
}

double task_score(const Metrics& metrics) {
  SP_CHECK(!metrics.empty(), "[tasks] no metrics to average");
  double sum = 0;
  for (const auto& [name, value] : metrics) sum += value;
  return sum / metrics.size();
}

double benchmark_average(const std::map<std::string, Metrics>& per_task) {
  SP_CHECK(!per_task.empty(), "[tasks] no tasks to average");
  double sum = 0;
  for (const auto& [task, metrics] : per_task) sum += task_score(metrics);
  return sum / per_task.size();
}

}  // namespace sp
