#include "experiments/tasks/predictions.h"

#include <nlohmann/json.hpp>
#include <unordered_map>

#include "experiments/inference/jsonl.h"
#include "tensor/error.h"

namespace sp {

std::vector<std::string> read_predictions(std::istream& in, const std::string& source,
                                          const std::vector<TaskExample>& examples) {
  std::unordered_map<std::string, size_t> position;
  for (size_t i = 0; i < examples.size(); ++i) {
    // Two examples with one id (a repeated idx in the data file) could never both be given.
    const auto [it, added] = position.emplace(examples[i].id, i);
    SP_CHECK(added, "[metrics] the split has two examples with id \"", examples[i].id,
             "\" (examples ", it->second + 1, " and ", i + 1,
             "): its data file repeats an idx, so predictions cannot be matched by id");
  }
  std::vector<std::string> predictions(examples.size());
  std::vector<int64_t> given_at(examples.size(), 0);
  JsonlReader reader(in, source);
  while (auto r = reader.next()) {
    auto id_it = r->value.find("id");
    if (id_it == r->value.end()) r->fail("expected \"id\"");
    // Ids are strings, but a bare number is accepted for files written by other tools.
    const std::string id = id_it->is_string() ? id_it->get<std::string>() : id_it->dump();
    auto it = position.find(id);
    if (it == position.end())
      r->fail(str_cat("unknown id \"", id, "\": not in the split (", examples.size(),
                      " examples, e.g. \"", examples.empty() ? "" : examples.front().id, "\")"));
    if (given_at[it->second] != 0)
      r->fail(str_cat("id \"", id, "\" was already given on line ", given_at[it->second]));
    predictions[it->second] = r->string_field("prediction");
    given_at[it->second] = r->line;
  }
  std::string missing;
  size_t n_missing = 0;
  for (size_t i = 0; i < examples.size(); ++i) {
    if (given_at[i] != 0) continue;
    if (n_missing < 3) missing += str_cat(n_missing ? ", " : "", "\"", examples[i].id, "\"");
    ++n_missing;
  }
  SP_CHECK(n_missing == 0, "[metrics] ", source, ": no prediction for ", n_missing, " of ",
           examples.size(), " examples (", missing, n_missing > 3 ? ", ..." : "", ")");
  return predictions;
}

std::string metrics_json(const Metrics& metrics) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [name, value] : metrics) j[name] = value;
  return j.dump();
}

std::string example_json(const TaskExample& example) {
  nlohmann::ordered_json j;
  j["id"] = example.id;
  j["inputs"] = example.inputs;
  j["targets"] = example.targets;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace sp
