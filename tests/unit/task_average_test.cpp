// The benchmark score of the reports (task_average_records): SuperGLUE's eight tasks, each
// folded into one number as T5 does, averaged per point and seed; incomplete seeds, transfer
// evaluations, ensemble columns and custom tasks.
#include "experiments/report/task_average.h"

#include <gtest/gtest.h>

#include <cmath>

#include "experiments/report/summary.h"

namespace sp {
namespace {

const std::vector<std::string> kSuperGlue = {"boolq",  "cb",  "copa", "multirc",
                                             "record", "rte", "wic",  "wsc"};

ResultRecord record(const std::string& task, const std::string& size, int64_t seed,
                    std::map<std::string, double> metrics) {
  ResultRecord r;
  r.trial = task + "," + size + "," + std::to_string(seed);
  r.point = {{"stages.tune.task", task}, {"tags.size", size}};
  r.seed = seed;
  r.stage = "eval";
  r.task = task;
  r.split = "validation";
  r.metrics = std::move(metrics);
  return r;
}

// Task i of kSuperGlue scores 50 + i (+ seed); CB, MultiRC and ReCoRD report two metrics
// whose mean is that score.
std::map<std::string, double> metrics_of(const std::string& task, double score) {
  if (task == "cb") return {{"accuracy", score + 4}, {"mean_3class_f1", score - 4}};
  if (task == "multirc") return {{"exact_match", score - 10}, {"f1", score + 10}};
  if (task == "record") return {{"em", score - 1}, {"f1", score + 1}};
  return {{"accuracy", score}};
}

std::vector<ResultRecord> superglue_results() {
  std::vector<ResultRecord> out;
  for (const std::string size : {"small", "base"})
    for (int64_t seed : {1, 2})
      for (size_t i = 0; i < kSuperGlue.size(); ++i) {
        // base, seed 2 never finished WSC.
        if (size == std::string("base") && seed == 2 && kSuperGlue[i] == "wsc") continue;
        out.push_back(record(kSuperGlue[i], size, seed,
                             metrics_of(kSuperGlue[i], 50.0 + static_cast<double>(i) + seed)));
      }
  return out;
}

TEST(TaskAverage, SuperGlueScoreIsTheMeanOfTheTaskScoresPerPointAndSeed) {
  const std::vector<ResultRecord> avg = task_average_records(superglue_results());
  ASSERT_EQ(avg.size(), 3u);  // small seeds 1 and 2, base seed 1; base seed 2 lacks WSC
  for (const ResultRecord& r : avg) {
    EXPECT_EQ(r.task, "superglue");
    EXPECT_EQ(r.stage, "eval");
    EXPECT_EQ(r.split, "validation");
    EXPECT_FALSE(r.point.contains("stages.tune.task"));
    ASSERT_EQ(r.metrics.size(), 1u);
    // mean of 50 + i + seed over i = 0..7: 53.5 + seed.
    EXPECT_DOUBLE_EQ(r.metrics.at("score"), 53.5 + static_cast<double>(r.seed));
  }
  EXPECT_EQ(avg[0].point, (nlohmann::json{{"tags.size", "small"}}));
  EXPECT_EQ(avg[2].point, (nlohmann::json{{"tags.size", "base"}}));
  EXPECT_EQ(avg[2].seed, 1);

  // Through the summary: one row per size, over the seeds that have every task.
  std::vector<ResultRecord> all = superglue_results();
  for (const ResultRecord& r : avg) all.push_back(r);
  int rows = 0;
  for (const SummaryRow& row : summarize(all)) {
    if (row.task != "superglue") continue;
    ++rows;
    const bool small = row.point.at("tags.size") == "small";
    EXPECT_EQ(row.n, small ? 2 : 1);
    EXPECT_DOUBLE_EQ(row.mean, small ? 55.0 : 54.5);
  }
  EXPECT_EQ(rows, 2);
}

TEST(TaskAverage, OtherTaskSetsTransfersAndEnsembleColumns) {
  std::vector<ResultRecord> results = {
      record("rte", "small", 1, {{"accuracy", 60}}),
      record("cb", "small", 1,
             {{"accuracy", 80},
              {"mean_3class_f1", 70},
              {"members_mean_accuracy", 70},
              {"members_mean_mean_3class_f1", 60},
              {"members_best_accuracy", 90},
              {"members_best_mean_3class_f1", 80}}),
  };
  results[0].metrics["members_mean_accuracy"] = 50;
  results[0].metrics["members_best_accuracy"] = 70;
  // An evaluation of the RTE prompt on another task: not part of the RTE point's score.
  ResultRecord transfer = record("rte", "small", 1, {{"accuracy", 0}});
  transfer.task = "mnli";
  results.push_back(transfer);
  const std::vector<ResultRecord> avg = task_average_records(results);
  ASSERT_EQ(avg.size(), 1u);
  EXPECT_EQ(avg[0].task, "task_average");  // two tasks, not SuperGLUE's eight
  EXPECT_DOUBLE_EQ(avg[0].metrics.at("score"), (60 + 75) / 2.0);
  EXPECT_DOUBLE_EQ(avg[0].metrics.at("members_mean_score"), (50 + 65) / 2.0);
  EXPECT_DOUBLE_EQ(avg[0].metrics.at("members_best_score"), (70 + 85) / 2.0);

  // A key zipped with the task (each task's data_dir) splits no point: it is left out of the
  // average's point with the task.
  std::vector<ResultRecord> with_dirs = {results[0], results[1]};
  for (ResultRecord& r : with_dirs) r.point["stages.tune.data_dir"] = "data/" + r.task;
  EXPECT_TRUE(task_average_records(with_dirs).empty());
  const std::vector<ResultRecord> zipped =
      task_average_records(with_dirs, {"stages.tune.task", "stages.tune.data_dir"});
  ASSERT_EQ(zipped.size(), 1u);
  EXPECT_DOUBLE_EQ(zipped[0].metrics.at("score"), (60 + 75) / 2.0);
  EXPECT_EQ(zipped[0].point, nlohmann::json({{"tags.size", "small"}}));

  // One task, or tasks that are not swept: nothing to average.
  EXPECT_TRUE(task_average_records({results[0]}).empty());
  ResultRecord unswept = results[0];
  unswept.point = nlohmann::json::object();
  EXPECT_TRUE(task_average_records({unswept, unswept}).empty());
}

// Custom tasks are swept by their YAML file: a trial's own task is its "tune" record's
// (the YAML's name), so an evaluation of its prompt on another task does not count, even
// one that is also among the swept tasks.
TEST(TaskAverage, CustomTasksSweptByTheirConfigFile) {
  std::vector<ResultRecord> results;
  for (const auto& [name, accuracy] : {std::pair{"weather", 60.0}, std::pair{"sports", 80.0}}) {
    for (const std::string stage : {"tune", "eval"}) {
      ResultRecord r;
      r.trial = std::string(name) + "-trial";
      r.point = {{"stages.tune.task_config", std::string(name) + ".yaml"}, {"tags.size", "small"}};
      r.seed = 1;
      r.stage = stage;
      r.task = name;
      r.split = "validation";
      r.metrics = {{"accuracy", stage == "tune" ? accuracy - 1 : accuracy}};
      results.push_back(r);
    }
  }
  ResultRecord transfer = results[1];  // the weather prompt scored on sports
  transfer.task = "sports";
  transfer.metrics = {{"accuracy", 0}};
  results.push_back(transfer);

  const std::vector<ResultRecord> avg = task_average_records(results);
  ASSERT_EQ(avg.size(), 2u);
  EXPECT_EQ(avg[0].stage, "tune");
  EXPECT_EQ(avg[0].task, "task_average");
  EXPECT_DOUBLE_EQ(avg[0].metrics.at("score"), (59 + 79) / 2.0);
  EXPECT_EQ(avg[1].stage, "eval");
  EXPECT_DOUBLE_EQ(avg[1].metrics.at("score"), (60 + 80) / 2.0);
  EXPECT_EQ(avg[1].point, nlohmann::json({{"tags.size", "small"}}));
}

}  // namespace
}  // namespace sp
