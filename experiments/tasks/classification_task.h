#pragma once
// The base of every task whose targets are one of a fixed set of label strings: it maps
// predictions to class ids (an illegal string is class -1, always wrong) and computes the
// task's T5 metrics.
#include <string>
#include <vector>

#include "experiments/tasks/task.h"

namespace sp {

enum class ClassMetrics {
  kAccuracy,           // {"accuracy"}
  kAccuracyMacroF1,    // {"accuracy", "mean_<n>class_f1"} (CB), primary: the F1
  kAccuracyF1,         // {"accuracy", "f1"} of label 1 (MRPC, QQP), primary: f1
  kF1GroupExactMatch,  // {"f1", "exact_match"} per TaskExample::group (MultiRC), primary: f1
};

class ClassificationTask : public Task {
 public:
  ClassificationTask(std::string name, std::vector<std::string> labels, ClassMetrics metrics,
                     TaskOptions options);

  std::string name() const override { return name_; }
  std::vector<std::string> labels() const override { return labels_; }
  Metrics compute_metrics(const std::vector<TaskExample>& examples,
                          const std::vector<std::string>& predictions) const override;
  std::string primary_metric() const override;
  std::vector<std::string> metric_names() const override;

 protected:
  // An example with targets = labels()[label], or "<unk>" (T5's) when label is -1.
  TaskExample make_example(std::string id, std::string inputs, int label) const;

  std::string name_;
  std::vector<std::string> labels_;
  ClassMetrics metrics_;
  TaskOptions options_;
};

}  // namespace sp
