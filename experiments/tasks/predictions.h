#pragma once
// Scoring a file of predictions against a task's split: the `softprompt metrics` command and
// the runner's evaluation both go through here.
#include <istream>
#include <string>
#include <vector>

#include "experiments/tasks/task.h"

namespace sp {

// Reads JSON lines {"id": ..., "prediction": "text"} from in (source names it in errors) and
// returns the predictions in the order of examples. Throws "<source>:<line>: ..." for a
// malformed line, an id that is not in examples, or an id given twice, and names the first
// missing ids when some example has no prediction.
std::vector<std::string> read_predictions(std::istream& in, const std::string& source,
                                          const std::vector<TaskExample>& examples);

// The metrics as one JSON object, keys sorted: {"accuracy":71.5}.
std::string metrics_json(const Metrics& metrics);

// One example as the JSON line `tasks preview` prints: {"id":..,"inputs":..,"targets":..}.
std::string example_json(const TaskExample& example);

}  // namespace sp
