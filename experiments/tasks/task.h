#pragma once
// Downstream tasks as text-to-text, the way T5 casts them: each raw example becomes an
// `inputs` string and a `targets` string, and a task scores the decoded predictions with
// T5's metrics (x100, T5's metric names). Tasks register themselves by name:
//
//   TaskOptions options;
//   options.data_dir = "/data/superglue/RTE";      // holds train.jsonl, val.jsonl, test.jsonl
//   std::unique_ptr<Task> task = make_task("rte", options);
//   std::vector<TaskExample> val = task->load("validation");
//   Metrics m = task->compute_metrics(val, predictions);   // {"accuracy": 71.5}
//   double early_stop_value = m.at(task->primary_metric());
//
// Registered names: boolq cb copa multirc record rte wic wsc (SuperGLUE jsonl), mrpc qqp
// (GLUE tsv), custom (a YAML file, options.config), wordnet_wic and wordnet_topic (built
// in, made from Debian's wordnet-base). docs/tasks.md describes every format and metric.
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace sp {

// Metric name -> value, x100 (T5's convention): "accuracy", "mean_3class_f1", "f1",
// "exact_match", "em".
using Metrics = std::map<std::string, double>;

struct TaskExample {
  // Stable across runs and unique within a split: "<task>-<split>-<idx>" from the dataset's
  // own idx (MultiRC "multirc-validation-<paragraph>-<question>-<answer>", ReCoRD
  // "record-validation-<passage>-<query>", with "-<k>" for the k-th answer in train).
  std::string id;
  std::string inputs;   // the encoder text
  std::string targets;  // the decoder text ("<unk>" when the split has no label, as T5)
  // Classification tasks: the index of targets in Task::labels(); -1 when unlabelled.
  // WSC: 1 when targets names the pronoun's true referent, 0 when not, -1 unlabelled.
  // ReCoRD and other free-form tasks: -1.
  int label = -1;
  // Examples scored together: MultiRC's question ("<paragraph>-<question>"), ReCoRD's query
  // ("<passage>-<query>"); empty for the other tasks.
  std::string group;
  // Free-form tasks (ReCoRD, custom text targets): every gold answer (metrics take the max
  // over them); empty for the others.
  std::vector<std::string> answers;

  // Whether the example has its gold target and can be scored: only a test split's
  // examples may have none (split_may_be_unlabelled).
  bool labelled() const { return label >= 0 || !answers.empty(); }
};

struct TaskOptions {
  // The folder with the split files (SuperGLUE: train.jsonl, val.jsonl, test.jsonl; GLUE:
  // train.tsv, dev.tsv, test.tsv). wordnet_wic, wordnet_topic: the WordNet dict folder
  // (empty: its default /usr/share/wordnet). custom: the folder split paths are relative to (empty:
  // the YAML's).
  std::string data_dir;
  // Prepend T5's task name ("rte hypothesis: ..."). Off by default, as in the paper.
  bool task_prefix = false;
  // custom: the task's YAML file.
  std::string config;
  // Seed for tasks that make their data (wordnet_wic, wordnet_topic); the data is a pure
  // function of it.
  uint64_t seed = 0;
};

class Task {
 public:
  virtual ~Task() = default;

  // The registered name ("rte"), or the YAML's name for custom tasks.
  virtual std::string name() const = 0;
  // The split names load() accepts, e.g. {"train", "validation", "test"}. SuperGLUE / GLUE
  // tasks also accept any other name X whose file DIR/X.jsonl (X.tsv) exists ("train32").
  virtual std::vector<std::string> splits() const = 0;
  // The split's examples in file order. Throws sp::Error naming the file and line of a
  // malformed record (a record without its label too, except in a test split: "test" or a
  // name starting with "test"), or the missing file, and naming the examples when two
  // share an id (a repeated idx would merge MultiRC questions or ReCoRD queries, and
  // predictions are matched to examples by id).
  std::vector<TaskExample> load(const std::string& split) const;
  // The file load(split) reads, without reading it ("" when the task makes the split in
  // memory). Throws as load() would for a missing file or an unknown split, so a spec can
  // refuse them before any work starts.
  virtual std::string split_file(const std::string& split) const = 0;
  // The legal target strings (the verbalizers) in label-index order, for classification
  // tasks; empty for free-form tasks (ReCoRD, WSC).
  virtual std::vector<std::string> labels() const = 0;
  // predictions[i] is the decoded text for examples[i]. A prediction that is not a legal
  // label counts as wrong. Throws when the sizes differ or an example is unlabelled.
  virtual Metrics compute_metrics(const std::vector<TaskExample>& examples,
                                  const std::vector<std::string>& predictions) const = 0;
  // The metric early stopping and model selection watch (higher is better for all).
  virtual std::string primary_metric() const = 0;
  // The names compute_metrics reports, sorted, known without any data (so a spec's
  // stages.tune.metric can be checked before a run).
  virtual std::vector<std::string> metric_names() const = 0;

 protected:
  // What load() returns, before its check that ids are unique: each task's own reader.
  virtual std::vector<TaskExample> read_split(const std::string& split) const = 0;
};

using TaskFactory = std::function<std::unique_ptr<Task>(const TaskOptions&)>;

// Throws sp::Error naming the registered tasks when name is unknown (case-insensitive).
std::unique_ptr<Task> make_task(const std::string& name, const TaskOptions& options);
// Every registered name, sorted.
std::vector<std::string> task_names();

struct TaskRegistrar {
  TaskRegistrar(std::string name, TaskFactory factory);
};

// The first n examples (n <= 0: all), and the rest of the last one's group (a MultiRC
// question's answers, a ReCoRD query's): a group scored in part would score wrong (MultiRC's
// exact match over a question's answers).
std::vector<TaskExample> first_examples(std::vector<TaskExample> examples, int64_t n);

// Throws "<what> '<metric>': task <task> reports <names>; did you mean '<closest>'?" when
// names (the metrics the task reports) lack metric.
void check_metric_name(const std::string& task, const std::vector<std::string>& names,
                       const std::string& metric, const std::string& what);

// The mean of a task's metrics: how T5 folds CB (F1, accuracy), MultiRC (F1a, EM) and
// ReCoRD (F1, EM) into one number for the SuperGLUE / GLUE average.
double task_score(const Metrics& metrics);
// The mean of task_score over the given tasks (task name -> its metrics): the SuperGLUE
// score when the eight SuperGLUE tasks are given. Throws when per_task is empty.
double benchmark_average(const std::map<std::string, Metrics>& per_task);

}  // namespace sp

#define SP_REGISTER_TASK(id, name, factory) \
  static const ::sp::TaskRegistrar sp_task_registrar_##id(name, factory)
