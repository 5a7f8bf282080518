#pragma once
// The benchmark score the paper plots (Figures 1 and 3, Table 3): per sweep point and
// seed, the mean over the tasks of each task's score, T5's fold of a task's metrics into
// one number (task_score: CB's accuracy and F1, MultiRC's F1 and exact match, ReCoRD's F1
// and EM averaged). With SuperGLUE's eight tasks it is the SuperGLUE score.
//
// The tasks are those swept by stages.tune.task, or by stages.tune.task_config for custom
// tasks (named by their YAML's `name`); a record counts when it scores the task its trial
// tuned on, the task of the trial's "tune" record (transfer evaluations do not). A point
// and seed with results for only some of the tasks gets no score, so a failed task lowers
// n rather than the score.
#include <set>
#include <string>
#include <vector>

#include "experiments/report/results.h"

namespace sp {

// The swept keys that name the task a trial tunes on: a built-in task, or a custom task's
// YAML file.
inline constexpr const char* kTaskSweepKey = "stages.tune.task";
inline constexpr const char* kTaskConfigSweepKey = "stages.tune.task_config";
// The task names the averages' records carry.
inline constexpr const char* kSuperGlueTask = "superglue";
inline constexpr const char* kTaskAverageTask = "task_average";

// One record per (stage, split, point without the task keys and the keys swept_with_task,
// e.g. a data_dir zipped with the task, seed) holding every task of
// its (stage, split), when there are at least two: task "superglue" when they are
// SuperGLUE's eight, else "task_average"; metric "score", plus "members_mean_score" and
// "members_best_score" from an ensemble's member metrics.
std::vector<ResultRecord> task_average_records(const std::vector<ResultRecord>& results,
                                               const std::set<std::string>& swept_with_task = {});

}  // namespace sp
