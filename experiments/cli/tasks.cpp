// `softprompt tasks list | preview | build`: the downstream tasks (experiments/tasks/).
//   tasks preview --task rte --data DIR --split validation -n 3
//     prints the formatted examples as JSON lines {"id", "inputs", "targets"} (-n 0: all)
//   tasks build wordnet_wic --out DIR [--wordnet /usr/share/wordnet] [--seed N]
//     writes the built-in word-in-context data as DIR/{train,val,test}.jsonl (WiC's layout)
//   tasks build wordnet_topic --out DIR [--wordnet /usr/share/wordnet] [--seed N]
//     writes the built-in gloss-topic data as DIR/{train,val,test}.jsonl
#include <iostream>
#include <memory>
#include <string>

#include "experiments/cli/command.h"
#include "experiments/tasks/predictions.h"
#include "experiments/tasks/task.h"
#include "experiments/tasks/wordnet_topic.h"
#include "experiments/tasks/wordnet_wic.h"
#include "tensor/error.h"

namespace sp::cli {
namespace {

struct TasksOptions {
  std::string task;
  std::string split = "validation";
  int64_t count = 5;
  TaskOptions task_options;
  // build
  std::string build_task;
  std::string out;
  WordNetWicOptions wic;
  std::string wordnet = kDefaultWordnetDir;
};

int run_list() {
  for (const std::string& name : task_names()) std::cout << name << "\n";
  return 0;
}

int run_preview(const TasksOptions& o) {
  const std::unique_ptr<Task> task = make_task(o.task, o.task_options);
  const std::vector<TaskExample> examples = task->load(o.split);
  const size_t n =
      o.count == 0 ? examples.size() : std::min(examples.size(), static_cast<size_t>(o.count));
  for (size_t i = 0; i < n; ++i) std::cout << example_json(examples[i]) << "\n";
  return 0;
}

int run_build(const TasksOptions& o) {
  if (o.build_task == "wordnet_topic") {
    WordNetTopicOptions topic;
    topic.seed = o.wic.seed;
    const WordNetTopicData data = make_wordnet_topic(o.wordnet, topic);
    write_wordnet_topic(data, topic.classes, o.out);
    std::cout << "wrote " << o.out << "/{train,val,test}.jsonl: " << data.train.size() << " / "
              << data.validation.size() << " / " << data.test.size() << " examples\n";
    return 0;
  }
  SP_CHECK(o.build_task == "wordnet_wic",
           "[tasks build] only wordnet_wic and wordnet_topic are built from local "
           "data, got '",
           o.build_task, "'");
  const WordNetWicData data = make_wordnet_wic(read_wordnet_senses(o.wordnet), o.wic);
  write_wordnet_wic(data, o.out);
  std::cout << "wrote " << o.out << "/{train,val,test}.jsonl: " << data.train.size() << " / "
            << data.validation.size() << " / " << data.test.size() << " pairs\n";
  return 0;
}

// The options every command that loads a task takes.
void add_task_options(CLI::App& app, TaskOptions& t) {
  app.add_option("--data", t.data_dir,
                 "Folder with the split files (SuperGLUE: train.jsonl, val.jsonl, test.jsonl; "
                 "GLUE: train.tsv, dev.tsv, test.tsv; wordnet_wic, wordnet_topic: a WordNet "
                 "folder, default /usr/share/wordnet)");
  app.add_option("--config", t.config, "The task's YAML file (task custom)");
  app.add_flag("--prefix", t.task_prefix,
               "Prepend T5's task name to the inputs (off in the paper)");
  app.add_option("--seed", t.seed,
                 "Seed of tasks that make their data (wordnet_wic, wordnet_topic)")
      ->capture_default_str();
}

std::function<int()> setup_tasks(CLI::App& sub) {
  auto o = std::make_shared<TasksOptions>();
  sub.require_subcommand(1);
  CLI::App* list = sub.add_subcommand("list", "Print the registered task names");
  CLI::App* preview = sub.add_subcommand(
      "preview",
      "Print a split's formatted examples as JSON lines {\"id\", \"inputs\", \"targets\"}");
  preview->add_option("--task", o->task, "Task name (softprompt tasks list)")->required();
  add_task_options(*preview, o->task_options);
  preview->add_option("--split", o->split, "train, validation, test (or NAME for DIR/NAME.jsonl)")
      ->capture_default_str();
  preview->add_option("-n", o->count, "How many examples (0: all)")
      ->check(non_negative())
      ->capture_default_str();
  CLI::App* build = sub.add_subcommand(
      "build",
      "Write a built-in task's data as jsonl files (wordnet_wic in WiC's layout, wordnet_topic)");
  build->add_option("task", o->build_task, "wordnet_wic or wordnet_topic")->required();
  build->add_option("--out", o->out, "Output folder")->required();
  build->add_option("--wordnet", o->wordnet, "WordNet database folder")->capture_default_str();
  build->add_option("--seed", o->wic.seed, "Seed")->capture_default_str();
  build->add_option("--max-train", o->wic.max_train, "wordnet_wic: train pairs at most")
      ->capture_default_str();
  build
      ->add_option("--max-validation", o->wic.max_validation,
                   "wordnet_wic: validation pairs at most")
      ->capture_default_str();
  build->add_option("--max-test", o->wic.max_test, "wordnet_wic: test pairs at most")
      ->capture_default_str();
  build
      ->add_option("--pairs-per-lemma", o->wic.max_pairs_per_lemma,
                   "wordnet_wic: pairs of each label per lemma at most")
      ->check(positive())
      ->capture_default_str();
  return [o, list, preview, build] {
    if (list->parsed()) return run_list();
    if (preview->parsed()) return run_preview(*o);
    if (build->parsed()) return run_build(*o);
    return 1;
  };
}

}  // namespace

// Shared with metrics.cpp.
void add_task_options_to(CLI::App& app, TaskOptions& t) { add_task_options(app, t); }

SP_REGISTER_COMMAND(tasks, "List tasks, preview their text-to-text examples, build built-in data",
                    setup_tasks);

}  // namespace sp::cli
