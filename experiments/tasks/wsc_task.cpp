// WSC in T5's "simple" form (wsc_simple): the input is the text with the pronoun marked
// "*he*", the target is the candidate referent's text; train keeps only examples whose
// candidate is the true referent. Scored as T5: a prediction "names the referent" by the
// wsc_simple matching, and that must equal the example's label.
#include <cctype>
#include <memory>

#include "experiments/tasks/metrics.h"
#include "experiments/tasks/task.h"
#include "experiments/tasks/task_io.h"
#include "tensor/error.h"

namespace sp {
namespace {

const std::map<std::string, std::string> kSplitFiles = {
    {"train", "train.jsonl"}, {"validation", "val.jsonl"}, {"test", "test.jsonl"}};

std::vector<std::string> split_on_space(const std::string& s) {
  std::vector<std::string> words;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i)
    if (i == s.size() || s[i] == ' ') {
      words.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  return words;
}

std::vector<std::string> split_whitespace(const std::string& s) {
  std::vector<std::string> words;
  std::string w;
  for (char c : s) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      if (!w.empty()) words.push_back(w);
      w.clear();
    } else {
      w.push_back(c);
    }
  }
  if (!w.empty()) words.push_back(w);
  return words;
}

struct WscSpans {
  std::string text;
  std::string span1_text, span2_text;
  int64_t span1_index = 0, span2_index = 0;
};

// TFDS's wsc.fixed repairs of spans that are not substrings of the text (T5 trains on
// wsc.fixed): match the case of the text's word at the span index, drop a trailing ".",
// replace newlines by spaces.
void fix_span(WscSpans& x, std::string& span, int64_t index) {
  if (x.text.find(span) != std::string::npos) return;
  if (span == "Kamenev and Zinoviev" || span == "Kamenev, Zinoviev, and Stalin") return;
  // TFDS's own repair of this one only moves the index (its text replace is a no-op).
  if (span.find("theyscold") != std::string::npos) x.span2_index = 10;
  const std::vector<std::string> words = split_whitespace(x.text);
  if (!span.empty() && index >= 0 && index < static_cast<int64_t>(words.size()) &&
      !words[index].empty()) {
    const char first = words[index][0];
    span[0] = (first >= 'a' && first <= 'z')
                  ? static_cast<char>(std::tolower(static_cast<unsigned char>(span[0])))
                  : static_cast<char>(std::toupper(static_cast<unsigned char>(span[0])));
  }
  while (!span.empty() && span.back() == '.') span.pop_back();
  for (char& c : span)
    if (c == '\n') c = ' ';
}

// T5's _wsc_inputs followed by wsc_simple's marking: the pronoun (the word at span2_index)
// becomes "*<span2_text>*".
std::string marked_text(const WscSpans& x) {
  // The two texts T5 special-cases, whose span2_index does not point at the pronoun.
  static const std::string kPony =
      "The boy continued to whip the pony , and eventually the pony threw him over. John "
      "laughed out quite loud. \"Good for him,\" he said. ";
  static const std::string kPebble =
      "When they had eventually calmed down a bit , and had gotten home, Mr. Farley put the "
      "magic pebble in an iron safe . Some day they might want to use it , but really for now, "
      "what more could they wish for?";
  static const std::string kPonyBlanked =
      "The boy continued to whip the pony , and eventually the pony threw him over. John "
      "laughed out quite loud. \"Good for X ,\" he said.";
  static const std::string kPebbleBlanked =
      "When they had eventually calmed down a bit , and had gotten home, Mr. Farley put the "
      "magic pebble in an iron safe . Some day they might want to use X , but really for now, "
      "what more could they wish for?";
  std::string blanked;
  if (x.text == kPony) {
    blanked = kPonyBlanked;
  } else if (x.text == kPebble) {
    blanked = kPebbleBlanked;
  } else {
    std::vector<std::string> words = split_on_space(x.text);
    const int64_t i = x.span2_index;
    SP_CHECK(i > 0 && i < static_cast<int64_t>(words.size()), "[wsc] span2_index ", i,
             " is not inside the text's ", words.size(), " words (T5 needs 0 < index < words)");
    // join([join(words[:i]), "X", join(words[i + 1:])], " "): a last-word pronoun leaves
    // "... X " with a trailing space, which the " X " replacement below still marks.
    for (int64_t k = 0; k < i; ++k) blanked.append(words[k]).push_back(' ');
    blanked.append("X ");
    for (int64_t k = i + 1; k < static_cast<int64_t>(words.size()); ++k) {
      if (k > i + 1) blanked.push_back(' ');
      blanked.append(words[k]);
    }
  }
  // regex_replace(" X ", " *pronoun* "), every occurrence left to right.
  std::string out;
  const std::string mark = " *" + x.span2_text + "* ";
  size_t pos = 0;
  while (true) {
    const size_t hit = blanked.find(" X ", pos);
    if (hit == std::string::npos) break;
    out += blanked.substr(pos, hit - pos) + mark;
    pos = hit + 3;
  }
  out += blanked.substr(pos);
  return out;
}

class WscTask : public Task {
 public:
  explicit WscTask(TaskOptions options) : options_(std::move(options)) {}

  std::string name() const override { return "wsc"; }
  std::vector<std::string> splits() const override { return {"train", "validation", "test"}; }
  std::vector<std::string> labels() const override { return {}; }
  std::string primary_metric() const override { return "accuracy"; }
  std::vector<std::string> metric_names() const override { return {"accuracy"}; }

  std::string split_file(const std::string& split) const override {
    return split_path("wsc", options_.data_dir, split, kSplitFiles, ".jsonl");
  }

  std::vector<TaskExample> read_split(const std::string& split) const override {
    const std::string path = split_file(split);
    const bool correct_referent_only = split.rfind("train", 0) == 0;
    std::vector<TaskExample> out;
    const std::vector<JsonlRecord> records = read_jsonl_file(path);
    for (size_t i = 0; i < records.size(); ++i) {
      const JsonlRecord& r = records[i];
      WscSpans x;
      x.text = r.string_field("text");
      const nlohmann::json& target = child(r, r.value, "", "target", JsonKind::kObject);
      x.span1_text = child(r, target, "target.", "span1_text", JsonKind::kString);
      x.span2_text = child(r, target, "target.", "span2_text", JsonKind::kString);
      x.span1_index = child(r, target, "target.", "span1_index", JsonKind::kInteger);
      x.span2_index = child(r, target, "target.", "span2_index", JsonKind::kInteger);
      fix_span(x, x.span1_text, x.span1_index);
      fix_span(x, x.span2_text, x.span2_index);
      const int label =
          has_label(r, split, r.value, "", "label") ? (bool_field(r, "label") ? 1 : 0) : -1;
      if (correct_referent_only && label != 1) continue;
      TaskExample ex;
      ex.id = example_id("wsc", split,
                         r.has("idx") ? idx_text(r, r.value, "", "idx") : std::to_string(i));
      try {
        ex.inputs = (options_.task_prefix ? "wsc: " : "") + marked_text(x);
      } catch (const Error& e) {
        r.fail(e.what());
      }
      ex.targets = x.span1_text;
      ex.label = label;
      out.push_back(std::move(ex));
    }
    return out;
  }

  Metrics compute_metrics(const std::vector<TaskExample>& examples,
                          const std::vector<std::string>& predictions) const override {
    SP_CHECK(examples.size() == predictions.size(), "[wsc] ", examples.size(), " examples but ",
             predictions.size(), " predictions");
    std::vector<int> targets, predicted;
    for (size_t i = 0; i < examples.size(); ++i) {
      SP_CHECK(examples[i].label == 0 || examples[i].label == 1, "[wsc] example ", examples[i].id,
               " has no label (a test split?)");
      targets.push_back(examples[i].label);
      predicted.push_back(wsc_simple_class(predictions[i], examples[i].targets));
    }
    return {{"accuracy", accuracy_score(targets, predicted)}};
  }

 private:
  TaskOptions options_;
};

SP_REGISTER_TASK(wsc, "wsc", [](const TaskOptions& options) -> std::unique_ptr<Task> {
  return std::make_unique<WscTask>(options);
});

}  // namespace
}  // namespace sp
