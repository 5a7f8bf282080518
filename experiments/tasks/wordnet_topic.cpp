#include "experiments/tasks/wordnet_topic.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "experiments/data/wordnet.h"
#include "experiments/tasks/task_io.h"
#include "experiments/tasks/wordnet_held_out.h"
#include "experiments/tasks/wordnet_task.h"
#include "experiments/tasks/wordnet_task_data.h"
#include "models/io/atomic_file.h"
#include "tensor/error.h"

namespace sp {
namespace {

// The lex_filenum of a data file line (its second field); -1 for licence and blank lines.
int lex_filenum_of(const std::string& line, const std::string& label) {
  if (line.empty() || line.front() == ' ' || line.front() == '\r') return -1;
  const size_t a = line.find(' ');
  const size_t b = a == std::string::npos ? a : line.find(' ', a + 1);
  SP_CHECK(b != std::string::npos, "[wordnet_topic] ", label,
           ": expected \"offset lex_filenum ...\"");
  int value = -1;
  const char* first = line.data() + a + 1;
  const char* last = line.data() + b;
  const auto [end, ec] = std::from_chars(first, last, value);
  SP_CHECK(ec == std::errc() && end == last && value >= 0, "[wordnet_topic] ", label,
           ": lex_filenum \"", std::string(first, last), "\" is not a number");
  return value;
}

// Every usable synset of data.noun, per class index, in file order.
std::vector<std::vector<TopicExample>> read_classes(const std::string& dir,
                                                    const std::vector<TopicClass>& classes) {
  const std::string path = (std::filesystem::path(dir) / "data.noun").string();
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    fail_missing_wordnet(dir, "the directory does not exist");
  if (!std::filesystem::is_regular_file(path, ec)) fail_missing_wordnet(dir, path + " is missing");
  std::map<int, int> class_of;  // lex_filenum -> class index
  for (size_t c = 0; c < classes.size(); ++c)
    class_of[classes[c].lex_filenum] = static_cast<int>(c);
  std::vector<std::vector<TopicExample>> out(classes.size());
  std::ifstream in(path, std::ios::binary);
  SP_CHECK(in.is_open(), "[wordnet_topic] cannot open ", path);
  std::string line;
  int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    const std::string label = str_cat(path, ":", line_no);
    const auto it = class_of.find(lex_filenum_of(line, label));
    if (it == class_of.end()) continue;
    const std::optional<WordnetSynset> synset = parse_synset_line(line, 'n', label);
    if (!synset || synset->lemmas.empty() || synset->definitions.empty()) continue;
    TopicExample ex;
    ex.offset = synset->offset;
    ex.word = synset->lemmas.front();
    for (size_t i = 0; i < synset->definitions.size(); ++i)
      ex.gloss += (i ? "; " : "") + synset->definitions[i];
    ex.label = it->second;
    out[it->second].push_back(std::move(ex));
  }
  return out;
}

// Balanced: the same number from each class (the smallest class, at most cap), then shuffled.
std::vector<TopicExample> balance(std::vector<std::vector<TopicExample>> per_class, int64_t cap,
                                  SplitMix& rng) {
  size_t n = static_cast<size_t>(std::max<int64_t>(cap, 0));
  for (const auto& c : per_class) n = std::min(n, c.size());
  std::vector<TopicExample> out;
  for (auto& c : per_class) {
    shuffle(c, rng);
    for (size_t i = 0; i < n; ++i) out.push_back(std::move(c[i]));
  }
  shuffle(out, rng);
  return out;
}

}  // namespace

const std::vector<TopicClass>& wordnet_topic_classes() {
  static const std::vector<TopicClass> classes = {
      {5, "animal"}, {20, "plant"}, {13, "food"}, {6, "artifact"}};
  return classes;
}

WordNetTopicData make_wordnet_topic(const std::string& dir, const WordNetTopicOptions& options) {
  SP_CHECK(options.classes.size() >= 2, "[wordnet_topic] expected at least 2 classes, got ",
           options.classes.size());
  std::set<int> files;
  std::set<std::string> labels;
  for (const TopicClass& c : options.classes) {
    SP_CHECK(
        files.insert(c.lex_filenum).second && labels.insert(c.label).second && !c.label.empty(),
        "[wordnet_topic] class (", c.lex_filenum, ", \"", c.label,
        "\") repeats a lex_filenum or a label, or has an empty label");
  }
  std::vector<std::vector<TopicExample>> all = read_classes(dir, options.classes);
  for (size_t c = 0; c < all.size(); ++c)
    SP_CHECK(!all[c].empty(), "[wordnet_topic] no synset of lex_filenum ",
             options.classes[c].lex_filenum, " (\"", options.classes[c].label, "\") in ", dir,
             "/data.noun");
  // [split][class] -> examples; split 0 train, 1 validation, 2 test.
  std::vector<std::vector<TopicExample>> by_split[3];
  for (auto& s : by_split) s.resize(all.size());
  for (size_t c = 0; c < all.size(); ++c) {
    for (TopicExample& ex : all[c]) {
      by_split[static_cast<int>(wordnet_topic_split(ex.offset))][c].push_back(std::move(ex));
    }
  }
  SplitMix rng{options.seed * 0x9E3779B97F4A7C15ull + 0x70B1C};
  WordNetTopicData data;
  data.train = balance(std::move(by_split[0]), options.max_train_per_class, rng);
  data.validation = balance(std::move(by_split[1]), options.max_validation_per_class, rng);
  data.test = balance(std::move(by_split[2]), options.max_test_per_class, rng);
  return data;
}

void write_wordnet_topic(const WordNetTopicData& data, const std::vector<TopicClass>& classes,
                         const std::string& out_dir) {
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  SP_CHECK(!ec, "[wordnet_topic] cannot create ", out_dir, ": ", ec.message());
  const std::pair<const char*, const std::vector<TopicExample>*> files[] = {
      {"train.jsonl", &data.train}, {"val.jsonl", &data.validation}, {"test.jsonl", &data.test}};
  for (const auto& [name, examples] : files) {
    std::string text;
    for (size_t i = 0; i < examples->size(); ++i) {
      const TopicExample& ex = (*examples)[i];
      SP_CHECK(ex.label >= 0 && static_cast<size_t>(ex.label) < classes.size(),
               "[wordnet_topic] label ", ex.label, " of synset ", ex.offset, " is not a class");
      const nlohmann::json j = {{"idx", i},
                                {"offset", ex.offset},
                                {"word", ex.word},
                                {"gloss", ex.gloss},
                                {"label", classes[ex.label].label}};
      text += j.dump() + "\n";
    }
    write_file_atomic((std::filesystem::path(out_dir) / name).string(), text, "[wordnet_topic]");
  }
}

namespace {

std::vector<std::string> class_labels() {
  std::vector<std::string> out;
  for (const TopicClass& c : wordnet_topic_classes()) out.push_back(c.label);
  return out;
}

// inputs "word: <lemma> gloss: <definitions>", targets the class's word.
class WordNetTopicTask : public WordNetTask<WordNetTopicData, TopicExample> {
 public:
  explicit WordNetTopicTask(TaskOptions options)
      : WordNetTask("wordnet_topic", class_labels(), std::move(options)) {}

 private:
  WordNetTopicData make_data(const std::string& wordnet_dir, uint64_t seed) const override {
    WordNetTopicOptions options;
    options.seed = seed;
    return make_wordnet_topic(wordnet_dir, options);
  }

  TaskExample row_example(const std::string& split, const std::string& idx,
                          const TopicExample& ex) const override {
    return example(split, idx, ex.word, ex.gloss, ex.label);
  }

  TaskExample built_example(const std::string& split, const std::string& idx,
                            const JsonlRecord& r) const override {
    int label = -1;
    if (has_label(r, split, r.value, "", "label")) {
      const std::string text = r.string_field("label");
      const auto it = std::find(labels_.begin(), labels_.end(), text);
      if (it == labels_.end()) {
        std::string known;
        for (const std::string& l : labels_) known += (known.empty() ? "" : ", ") + l;
        r.fail(str_cat("label \"", text, "\" is not one of ", known));
      }
      label = static_cast<int>(it - labels_.begin());
    }
    return example(split, idx, r.string_field("word"), r.string_field("gloss"), label);
  }

  TaskExample example(const std::string& split, const std::string& idx, const std::string& word,
                      const std::string& gloss, int label) const {
    return make_example(
        example_id(name_, split, idx),
        join_fields(options_.task_prefix, name_, {{"word", word}, {"gloss", gloss}}), label);
  }
};

SP_REGISTER_TASK(wordnet_topic, "wordnet_topic",
                 [](const TaskOptions& options) -> std::unique_ptr<Task> {
                   return std::make_unique<WordNetTopicTask>(options);
                 });

}  // namespace
}  // namespace sp
