// `softprompt metrics --task NAME --data DIR --split SPLIT --predictions FILE.jsonl`: scores
// lines {"id": ..., "prediction": "text"} (ids as `tasks preview` prints them) with the
// task's T5 metrics and prints them as one JSON object, e.g. {"accuracy":71.48}.
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>

#include "experiments/cli/command.h"
#include "experiments/tasks/predictions.h"
#include "experiments/tasks/task.h"
#include "tensor/error.h"

namespace sp::cli {

void add_task_options_to(CLI::App& app, TaskOptions& t);  // tasks.cpp

namespace {

struct MetricsOptions {
  std::string task;
  std::string split = "validation";
  std::string predictions;
  TaskOptions task_options;
};

int run_metrics(const MetricsOptions& o) {
  const std::unique_ptr<Task> task = make_task(o.task, o.task_options);
  const std::vector<TaskExample> examples = task->load(o.split);
  std::ifstream file;
  if (o.predictions != "-") {
    file.open(o.predictions);
    SP_CHECK(file.is_open(), "[metrics] cannot open ", o.predictions, ": ", std::strerror(errno));
  }
  std::istream& in = o.predictions == "-" ? std::cin : file;
  const std::vector<std::string> predictions =
      read_predictions(in, o.predictions == "-" ? "<stdin>" : o.predictions, examples);
  std::cout << metrics_json(task->compute_metrics(examples, predictions)) << "\n";
  return 0;
}

std::function<int()> setup_metrics(CLI::App& sub) {
  auto o = std::make_shared<MetricsOptions>();
  sub.add_option("--task", o->task, "Task name (softprompt tasks list)")->required();
  add_task_options_to(sub, o->task_options);
  sub.add_option("--split", o->split, "The split the predictions are for")->capture_default_str();
  sub.add_option(
         "--predictions", o->predictions,
         "JSON lines {\"id\": ..., \"prediction\": \"text\"}, one per example (- for stdin)")
      ->required();
  return [o] { return run_metrics(*o); };
}

}  // namespace

SP_REGISTER_COMMAND(metrics, "Score predictions with a task's metrics (prints one JSON object)",
                    setup_metrics);

}  // namespace sp::cli
