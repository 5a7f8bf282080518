#include "experiments/tasks/classification_task.h"

#include "experiments/tasks/metrics.h"
#include "tensor/error.h"

namespace sp {

ClassificationTask::ClassificationTask(std::string name, std::vector<std::string> labels,
                                       ClassMetrics metrics, TaskOptions options)
    : name_(std::move(name)),
      labels_(std::move(labels)),
      metrics_(metrics),
      options_(std::move(options)) {
  SP_CHECK(labels_.size() >= 2, "[", name_, "] a classification task needs at least 2 labels, got ",
           labels_.size());
  if (metrics_ == ClassMetrics::kAccuracyF1 || metrics_ == ClassMetrics::kF1GroupExactMatch)
    SP_CHECK(labels_.size() == 2, "[", name_, "] binary F1 needs exactly 2 labels, got ",
             labels_.size());
}

TaskExample ClassificationTask::make_example(std::string id, std::string inputs, int label) const {
  TaskExample ex;
  ex.id = std::move(id);
  ex.inputs = std::move(inputs);
  ex.targets = label >= 0 ? labels_.at(label) : "<unk>";
  ex.label = label;
  return ex;
}

std::string ClassificationTask::primary_metric() const {
  switch (metrics_) {
    case ClassMetrics::kAccuracy: return "accuracy";
    case ClassMetrics::kAccuracyMacroF1: return str_cat("mean_", labels_.size(), "class_f1");
    case ClassMetrics::kAccuracyF1:
    case ClassMetrics::kF1GroupExactMatch: return "f1";
  }
  return "accuracy";
}

std::vector<std::string> ClassificationTask::metric_names() const {
  switch (metrics_) {
    case ClassMetrics::kAccuracy: return {"accuracy"};
    case ClassMetrics::kAccuracyMacroF1: return {"accuracy", primary_metric()};
    case ClassMetrics::kAccuracyF1: return {"accuracy", "f1"};
    case ClassMetrics::kF1GroupExactMatch: return {"exact_match", "f1"};
  }
  return {};
}

Metrics ClassificationTask::compute_metrics(const std::vector<TaskExample>& examples,
                                            const std::vector<std::string>& predictions) const {
  SP_CHECK(examples.size() == predictions.size(), "[", name_, "] ", examples.size(),
           " examples but ", predictions.size(), " predictions");
  SP_CHECK(!examples.empty(), "[", name_, "] no examples to score");
  std::vector<int> targets, predicted;
  std::vector<std::string> groups;
  for (size_t i = 0; i < examples.size(); ++i) {
    SP_CHECK(examples[i].label >= 0 && examples[i].label < static_cast<int>(labels_.size()), "[",
             name_, "] example ", examples[i].id, " has no label (a test split?)");
    targets.push_back(examples[i].label);
    predicted.push_back(label_index(labels_, predictions[i]));
    groups.push_back(examples[i].group);
  }
  switch (metrics_) {
    case ClassMetrics::kAccuracy: return {{"accuracy", accuracy_score(targets, predicted)}};
    case ClassMetrics::kAccuracyMacroF1:
      return {{"accuracy", accuracy_score(targets, predicted)},
              {primary_metric(), macro_f1(targets, predicted, static_cast<int>(labels_.size()))}};
    case ClassMetrics::kAccuracyF1:
      return {{"accuracy", accuracy_score(targets, predicted)},
              {"f1", binary_f1(targets, predicted)}};
    case ClassMetrics::kF1GroupExactMatch:
      return {{"f1", binary_f1(targets, predicted)},
              {"exact_match", group_exact_match(targets, predicted, groups)}};
  }
  return {};
}

}  // namespace sp
