// Task "custom": a task described by a YAML file (TaskOptions::config) over jsonl files.
//
//   name: sentiment
//   splits: {train: train.jsonl, validation: dev.jsonl}   # relative to --data, else the YAML
//   input_template: "sentence: {text}"                    # {field}, {a.b} for nested, {{ }}
//   label_field: label                                    # classification ...
//   verbalizers: {0: negative, 1: positive}               # label value -> target string
//   # target_template: "{answer}"                         # ... or free-form targets
//   id_field: idx                                         # optional; default: line number
//   metrics: [accuracy, macro_f1]                         # first one is the primary
//
// Classification metrics: accuracy, macro_f1 ("mean_<n>class_f1"), f1 (binary, of the
// second verbalizer). Free-form metrics: exact_match, squad ("em" and "f1", SQuAD
// normalised). Errors name the YAML's FILE:LINE:COL or the jsonl's FILE:LINE.
#include <algorithm>
#include <filesystem>
#include <memory>
#include <string_view>

#include "experiments/spec/map_reader.h"
#include "experiments/tasks/metrics.h"
#include "experiments/tasks/task.h"
#include "experiments/tasks/task_io.h"
#include "tensor/error.h"
#include "tensor/suggest.h"

namespace sp {
namespace {

// A template split into literal text and field references.
struct Template {
  struct Piece {
    bool field = false;
    std::string text;  // the literal, or the field's dotted name
  };
  std::vector<Piece> pieces;
  std::string source;  // as written, for messages
};

Template parse_template(const std::string& text, const SourceLocation& loc,
                        const std::string& key) {
  Template t;
  t.source = text;
  std::string literal;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if ((c == '{' || c == '}') && i + 1 < text.size() && text[i + 1] == c) {
      literal.push_back(c);
      ++i;
    } else if (c == '{') {
      const size_t close = text.find('}', i + 1);
      if (close == std::string::npos)
        fail_at(loc, str_cat(key, " has a '{' at character ", i + 1,
                             " without a closing '}' (write {{ for a literal brace)"));
      const std::string name = text.substr(i + 1, close - i - 1);
      if (name.empty() || name.find('{') != std::string::npos)
        fail_at(loc, str_cat(key, " has an empty or nested field at character ", i + 1));
      if (!literal.empty()) t.pieces.push_back({false, literal});
      literal.clear();
      t.pieces.push_back({true, name});
      i = close;
    } else if (c == '}') {
      fail_at(loc, str_cat(key, " has a '}' at character ", i + 1,
                           " without an opening '{' (write }} for a literal brace)"));
    } else {
      literal.push_back(c);
    }
  }
  if (!literal.empty()) t.pieces.push_back({false, literal});
  return t;
}

// A JSON value as template text: strings as they are, other scalars as JSON writes them.
std::string value_text(const nlohmann::json& v) {
  return v.is_string() ? v.get<std::string>() : v.dump();
}

// Walks record[dotted field]: the value, or null where a component is missing, with
// (on a miss) the object searched last and the missing key.
struct FieldLookup {
  const nlohmann::json* value = nullptr;
  const nlohmann::json* parent = nullptr;
  std::string missing;
};

FieldLookup find_field(const nlohmann::json& record, std::string_view dotted) {
  const nlohmann::json* v = &record;
  size_t start = 0;
  while (true) {
    const size_t dot = dotted.find('.', start);
    std::string part(dotted.substr(start, dot == std::string_view::npos ? dot : dot - start));
    if (!v->is_object() || !v->contains(part)) return {nullptr, v, std::move(part)};
    v = &(*v)[part];
    if (dot == std::string_view::npos) return {v, nullptr, {}};
    start = dot + 1;
  }
}

// record[dotted field], failing with the file and line when absent.
const nlohmann::json& field_value(const JsonlRecord& r, std::string_view dotted,
                                  std::string_view used_by) {
  const FieldLookup f = find_field(r.value, dotted);
  if (f.value == nullptr) {
    std::vector<std::string> keys;
    if (f.parent->is_object())
      for (auto it = f.parent->begin(); it != f.parent->end(); ++it) keys.push_back(it.key());
    r.fail(str_cat("no field \"", dotted, "\" (used by ", used_by, ")",
                   did_you_mean(f.missing, keys)));
  }
  return *f.value;
}

std::string fill(const Template& t, const JsonlRecord& r, const std::string& used_by) {
  std::string out;
  for (const Template::Piece& p : t.pieces) {
    if (!p.field) {
      out += p.text;
      continue;
    }
    const nlohmann::json& v = field_value(r, p.text, used_by);
    if (v.is_object() || v.is_array() || v.is_null())
      r.fail(str_cat("field \"", p.text, "\" (used by ", used_by, ") is ", json_kind(v),
                     ", expected text or a number"));
    out += value_text(v);
  }
  return out;
}

// Whether every field t uses is in the record.
bool has_fields(const Template& t, const JsonlRecord& r) {
  for (const Template::Piece& p : t.pieces)
    if (p.field && find_field(r.value, p.text).value == nullptr) return false;
  return true;
}

class CustomTask : public Task {
 public:
  explicit CustomTask(const TaskOptions& options) : options_(options) {
    SP_CHECK(!options.config.empty(),
             "[custom] the custom task needs its YAML file (docs/tasks.md): --config FILE for "
             "eval, tasks and metrics, stages.tune.task_config in a spec, --set "
             "task_config=FILE for tune");
    const SpecNode root = load_yaml_tree(options.config);
    // Unknown keys first: a misspelled key would otherwise surface as a missing one.
    static const std::vector<std::string> kKeys = {"name",        "splits",      "input_template",
                                                   "label_field", "verbalizers", "target_template",
                                                   "id_field",    "metrics"};
    if (root.is_map())
      for (const SpecNode::Entry& e : root.entries)
        if (std::find(kKeys.begin(), kKeys.end(), e.key) == kKeys.end())
          fail_at(e.key_loc, str_cat("unknown key '", e.key, "' in a custom task",
                                     did_you_mean(e.key, kKeys)));
    MapReader r(&root, "");
    name_ = r.string("name", "");
    r.check(!name_.empty(), "name", "is required (the task's name)");
    // The name starts example ids and the file names a run writes (<name>-<split>.jsonl).
    r.check(is_file_name_safe(name_), "name",
            str_cat("'", name_, "' must be ", kFileNameRule, " (it names files)"));
    base_dir_ = !options.data_dir.empty()
                    ? options.data_dir
                    : std::filesystem::path(options.config).parent_path().string();

    const SpecNode* splits = r.get("splits");
    r.check(splits != nullptr, "splits", "is required (split name -> jsonl file)");
    if (!splits->is_map()) r.fail("splits", str_cat("must be a map, got a ", splits->kind_name()));
    for (const SpecNode::Entry& e : splits->entries) {
      if (!is_file_name_safe(e.key))
        fail_at(e.key_loc, str_cat("splits: split name '", e.key, "' must be ", kFileNameRule,
                                   " (it names files)"));
      split_files_.push_back({e.key, node_string(e.value, "splits." + e.key)});
    }
    r.check(!split_files_.empty(), "splits", "must name at least one split");

    input_ =
        parse_template(r.string("input_template", ""), r.loc("input_template"), "input_template");
    r.check(!input_.pieces.empty(), "input_template", "is required, e.g. \"premise: {premise}\"");
    id_field_ = r.string("id_field", "");

    label_field_ = r.string("label_field", "");
    const SpecNode* verbalizers = r.get("verbalizers");
    const bool has_target_template = r.has("target_template");
    if (has_target_template)
      target_ = parse_template(r.string("target_template", ""), r.loc("target_template"),
                               "target_template");
    if (!label_field_.empty()) {
      r.check(!has_target_template, "target_template",
              "cannot be combined with label_field (classification uses verbalizers)");
      r.check(verbalizers != nullptr, "label_field",
              "needs verbalizers: a map from label values to target strings");
      if (!verbalizers->is_map())
        r.fail("verbalizers", str_cat("must be a map, got a ", verbalizers->kind_name()));
      for (const SpecNode::Entry& e : verbalizers->entries) {
        const std::string target = node_string(e.value, "verbalizers." + e.key);
        if (std::find(labels_.begin(), labels_.end(), target) != labels_.end())
          fail_at(e.value.loc, str_cat("verbalizers." + e.key, " repeats the target '", target,
                                       "': each label needs its own string"));
        label_values_.push_back(e.key);
        labels_.push_back(target);
      }
      r.check(labels_.size() >= 2, "verbalizers", "needs at least 2 labels");
      verbalizers_loc_ = verbalizers->loc;
    } else {
      r.check(verbalizers == nullptr, "verbalizers", "needs label_field (the field they map)");
      r.check(has_target_template, "label_field",
              "or target_template is required (classification or free-form targets)");
    }

    const std::vector<std::string> allowed =
        classification() ? std::vector<std::string>{"accuracy", "macro_f1", "f1"}
                         : std::vector<std::string>{"exact_match", "squad"};
    metrics_ = r.strings("metrics", {classification() ? "accuracy" : "exact_match"});
    r.check(!metrics_.empty(), "metrics", "must name at least one metric");
    for (const std::string& m : metrics_) {
      if (std::find(allowed.begin(), allowed.end(), m) == allowed.end()) {
        std::string list;
        for (const auto& a : allowed) list += str_cat(list.empty() ? "" : ", ", a);
        r.fail("metrics",
               str_cat("has '", m, "', not a ", classification() ? "classification" : "free-form",
                       " metric (", list, ")", did_you_mean(m, allowed)));
      }
      if (m == "f1") r.check(labels_.size() == 2, "metrics", "f1 needs exactly 2 verbalizers");
    }
    r.finish();
  }

  std::string name() const override { return name_; }
  std::vector<std::string> splits() const override {
    std::vector<std::string> names;
    for (const auto& [split, file] : split_files_) names.push_back(split);
    return names;
  }
  std::vector<std::string> labels() const override { return labels_; }

  std::string primary_metric() const override { return metric_names(metrics_.front()).back(); }
  std::vector<std::string> metric_names() const override {
    std::vector<std::string> names;
    for (const std::string& m : metrics_)
      for (const std::string& name : metric_names(m)) names.push_back(name);
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    return names;
  }

  std::string split_file(const std::string& split) const override {
    auto it = std::find_if(split_files_.begin(), split_files_.end(),
                           [&](const auto& s) { return s.first == split; });
    if (it == split_files_.end()) {
      std::string known;
      for (const auto& s : split_files_) known += str_cat(known.empty() ? "" : ", ", s.first);
      fail(str_cat("[", name_, "] ", options_.config, ": no split '", split, "' (splits: ", known,
                   ")", did_you_mean(split, splits())));
    }
    const std::filesystem::path file(it->second);
    const std::string path =
        file.is_absolute() ? file.string() : (std::filesystem::path(base_dir_) / file).string();
    std::error_code ec;
    SP_CHECK(!std::filesystem::is_directory(path, ec), "[", name_, "] split '", split, "': ", path,
             " is a directory, not a file (", options_.config, " splits.", split, ")");
    SP_CHECK(file_exists(path), "[", name_, "] split '", split, "': no file ", path, " (",
             options_.config, " splits.", split, ")");
    return path;
  }

  std::vector<TaskExample> read_split(const std::string& split) const override {
    const std::string path = split_file(split);
    std::vector<TaskExample> out;
    const std::vector<JsonlRecord> records = read_jsonl_file(path);
    for (size_t i = 0; i < records.size(); ++i) {
      const JsonlRecord& r = records[i];
      TaskExample ex;
      ex.id = str_cat(name_, "-", split, "-", id_field_.empty() ? std::to_string(i) : id_of(r));
      ex.inputs =
          str_cat(options_.task_prefix ? name_ + " " : "", fill(input_, r, "input_template"));
      if (classification()) {
        ex.label = label_of(r, split);
        ex.targets = ex.label >= 0 ? labels_[ex.label] : "<unk>";
      } else if (!has_fields(target_, r) && split_may_be_unlabelled(split)) {
        ex.targets = "<unk>";  // an unlabelled test example: no answers, not scored
      } else {
        ex.targets = fill(target_, r, "target_template");
        ex.answers = {ex.targets};
      }
      out.push_back(std::move(ex));
    }
    return out;
  }

  Metrics compute_metrics(const std::vector<TaskExample>& examples,
                          const std::vector<std::string>& predictions) const override {
    SP_CHECK(examples.size() == predictions.size(), "[", name_, "] ", examples.size(),
             " examples but ", predictions.size(), " predictions");
    SP_CHECK(!examples.empty(), "[", name_, "] no examples to score");
    for (const TaskExample& e : examples)
      SP_CHECK(e.labelled(), "[", name_, "] example ", e.id, " has no label (a test split?)");
    Metrics out;
    if (classification()) {
      std::vector<int> targets, predicted;
      for (size_t i = 0; i < examples.size(); ++i) {
        targets.push_back(examples[i].label);
        predicted.push_back(label_index(labels_, predictions[i]));
      }
      for (const std::string& m : metrics_) {
        const std::string key = metric_names(m).front();
        if (m == "accuracy") out[key] = accuracy_score(targets, predicted);
        if (m == "macro_f1")
          out[key] = macro_f1(targets, predicted, static_cast<int>(labels_.size()));
        if (m == "f1") out[key] = binary_f1(targets, predicted);
      }
      return out;
    }
    double exact = 0, em = 0, f1 = 0;
    for (size_t i = 0; i < examples.size(); ++i) {
      exact += predictions[i] == examples[i].targets;
      const SquadScore s = squad_max_over_answers({examples[i].targets}, predictions[i]);
      em += s.em;
      f1 += s.f1;
    }
    const double n = static_cast<double>(examples.size());
    for (const std::string& m : metrics_) {
      if (m == "exact_match") out["exact_match"] = 100.0 * exact / n;
      if (m == "squad") {
        out["em"] = 100.0 * em / n;
        out["f1"] = 100.0 * f1 / n;
      }
    }
    return out;
  }

 private:
  bool classification() const { return !label_field_.empty(); }

  // The reported names of a configured metric (squad reports two; the last is primary).
  std::vector<std::string> metric_names(const std::string& m) const {
    if (m == "macro_f1") return {str_cat("mean_", labels_.size(), "class_f1")};
    if (m == "squad") return {"em", "f1"};
    return {m};
  }

  // The record's id_field: a string or an integer, as it would be written in the id.
  std::string id_of(const JsonlRecord& r) const {
    const nlohmann::json& v = field_value(r, id_field_, "id_field");
    if (!v.is_string() && !v.is_number_integer())
      r.fail(str_cat("id field \"", id_field_, "\" is ", json_kind(v),
                     v.is_structured() ? "" : str_cat(" (", v.dump(), ")"),
                     ", expected a string or an integer"));
    return value_text(v);
  }

  int label_of(const JsonlRecord& r, const std::string& split) const {
    if (find_field(r.value, label_field_).value == nullptr) {
      if (split_may_be_unlabelled(split)) return -1;
      r.fail(str_cat("no label field \"", label_field_, "\" (split '", split,
                     "' needs labels; only a test split may leave them out)"));
    }
    const nlohmann::json& v = field_value(r, label_field_, "label_field");
    const std::string text = value_text(v);
    for (size_t k = 0; k < label_values_.size(); ++k) {
      // YAML writes booleans as true / True / TRUE; JSON only as true.
      const bool same =
          v.is_boolean() ? edit_distance(label_values_[k], text) == 0 : label_values_[k] == text;
      if (same) return static_cast<int>(k);
    }
    std::string known;
    for (const auto& l : label_values_) known += str_cat(known.empty() ? "" : ", ", l);
    r.fail(str_cat("label \"", label_field_, "\" is ", v.dump(), ", which has no verbalizer (",
                   verbalizers_loc_.str(), ": ", known, ")"));
  }

  TaskOptions options_;
  std::string name_;
  std::string base_dir_;
  std::vector<std::pair<std::string, std::string>> split_files_;
  Template input_, target_;
  std::string id_field_;
  std::string label_field_;
  std::vector<std::string> label_values_;  // as written in the YAML
  std::vector<std::string> labels_;        // the target strings
  SourceLocation verbalizers_loc_;
  std::vector<std::string> metrics_;
};

SP_REGISTER_TASK(custom, "custom", [](const TaskOptions& options) -> std::unique_ptr<Task> {
  return std::make_unique<CustomTask>(options);
});

}  // namespace
}  // namespace sp
