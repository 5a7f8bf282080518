#include "experiments/tasks/wordnet_wic.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>

#include "experiments/tasks/task_io.h"
#include "experiments/tasks/wordnet_held_out.h"
#include "experiments/tasks/wordnet_task.h"
#include "experiments/tasks/wordnet_task_data.h"
#include "models/io/atomic_file.h"
#include "tensor/error.h"

namespace sp {
namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_vowel(char c) { return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u'; }

std::vector<std::string> inflections(const std::string& w) {
  std::vector<std::string> forms = {w, w + "s", w + "ed", w + "ing"};
  const auto ends_with = [&](std::string_view end) {
    return w.size() > end.size() && w.compare(w.size() - end.size(), end.size(), end) == 0;
  };
  // -es after a sibilant or o (boxes, goes); -d after a final e (moved), not "be" -> "bed".
  for (std::string_view end : {"s", "x", "z", "ch", "sh", "o"})
    if (ends_with(end)) {
      forms.push_back(w + "es");
      break;
    }
  if (ends_with("e") && w.size() > 2) forms.push_back(w + "d");
  // A phrase also inflects its first word: "take off" -> "taking off".
  const size_t space = w.find(' ');
  if (space != std::string::npos) {
    for (const std::string& head : inflections(w.substr(0, space)))
      if (head.size() != space) forms.push_back(head + w.substr(space));
  }
  const char last = w.back();
  if (last == 'e' && w.size() > 2) forms.push_back(w.substr(0, w.size() - 1) + "ing");
  if (last == 'y' && w.size() > 2) {
    forms.push_back(w.substr(0, w.size() - 1) + "ies");
    forms.push_back(w.substr(0, w.size() - 1) + "ied");
  }
  if (w.size() > 2 && is_alpha(last) && !is_vowel(last) && is_vowel(w[w.size() - 2])) {
    forms.push_back(w + last + "ed");
    forms.push_back(w + last + "ing");
  }
  // Longest first, so "banks" is preferred over "bank" at the same position.
  std::sort(forms.begin(), forms.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  return forms;
}

struct Usage {
  std::string sentence;
  int64_t start, end;
};

// The lemma's usable senses: for each sense, the example sentences that contain it.
std::vector<std::vector<Usage>> sense_usages(const WordnetSenses& wn, const WordnetLemma& lemma) {
  std::vector<std::vector<Usage>> senses;
  std::set<std::string> seen;  // a sentence quoted under two senses would make a bad pair
  for (int64_t offset : lemma.synsets) {
    std::vector<Usage> usages;
    auto it = wn.sentences.find({lemma.pos, offset});
    if (it != wn.sentences.end()) {
      for (const std::string& s : it->second) {
        const auto [start, end] = find_lemma(s, lemma.lemma);
        if (start >= 0 && seen.insert(s).second) usages.push_back({s, start, end});
      }
    }
    senses.push_back(std::move(usages));
  }
  return senses;
}

WicPair make_pair(const std::string& word, char pos, const Usage& a, const Usage& b, bool label,
                  SplitMix& rng) {
  const bool swap = rng.below(2) == 1;
  const Usage& first = swap ? b : a;
  const Usage& second = swap ? a : b;
  return {word,         pos,        first.sentence, second.sentence, first.start, first.end,
          second.start, second.end, label};
}

// The balanced pairs of one lemma (positives first, then as many negatives).
std::vector<WicPair> lemma_pairs(const WordnetSenses& wn, const WordnetLemma& lemma, int64_t cap,
                                 SplitMix& rng) {
  if (lemma.synsets.size() < 2) return {};
  const std::vector<std::vector<Usage>> senses = sense_usages(wn, lemma);
  using Index = std::pair<size_t, size_t>;  // (sense, usage)
  std::vector<std::pair<Index, Index>> positives, negatives;
  std::vector<Index> all;
  for (size_t s = 0; s < senses.size(); ++s)
    for (size_t u = 0; u < senses[s].size(); ++u) all.push_back({s, u});
  for (size_t i = 0; i < all.size(); ++i)
    for (size_t j = i + 1; j < all.size(); ++j)
      (all[i].first == all[j].first ? positives : negatives).push_back({all[i], all[j]});
  const size_t n = std::min({positives.size(), negatives.size(), static_cast<size_t>(cap)});
  if (n == 0) return {};
  shuffle(positives, rng);
  shuffle(negatives, rng);
  std::string word = lemma.lemma;
  std::replace(word.begin(), word.end(), '_', ' ');
  std::vector<WicPair> out;
  for (size_t k = 0; k < n; ++k)
    for (const auto* list : {&positives, &negatives}) {
      const auto& [a, b] = (*list)[k];
      out.push_back(make_pair(word, lemma.pos, senses[a.first][a.second], senses[b.first][b.second],
                              list == &positives, rng));
    }
  return out;
}

void fill_split(std::vector<std::vector<WicPair>> lemmas, int64_t cap, SplitMix& rng,
                std::vector<WicPair>& out) {
  shuffle(lemmas, rng);
  for (auto& pairs : lemmas) {
    if (static_cast<int64_t>(out.size() + pairs.size()) > cap) continue;
    for (WicPair& p : pairs) out.push_back(std::move(p));
  }
  shuffle(out, rng);
}

}  // namespace

std::pair<int64_t, int64_t> find_lemma(const std::string& sentence, const std::string& lemma) {
  if (lemma.empty()) return {-1, -1};
  std::string word = lemma;
  std::replace(word.begin(), word.end(), '_', ' ');
  for (char& c : word) c = lower(c);
  const std::vector<std::string> forms = inflections(word);
  std::string low = sentence;
  for (char& c : low) c = lower(c);
  for (size_t i = 0; i < low.size(); ++i) {
    if (i > 0 && is_alpha(low[i - 1])) continue;
    for (const std::string& f : forms) {
      if (low.compare(i, f.size(), f) != 0) continue;
      const size_t end = i + f.size();
      if (end < low.size() && is_alpha(low[end])) continue;
      return {static_cast<int64_t>(i), static_cast<int64_t>(end)};
    }
  }
  return {-1, -1};
}

WordNetWicData make_wordnet_wic(const WordnetSenses& wordnet, const WordNetWicOptions& options) {
  SP_CHECK(options.max_pairs_per_lemma > 0, "[wordnet_wic] max_pairs_per_lemma must be > 0");
  SplitMix rng{options.seed * 0x9E3779B97F4A7C15ull + 0x5EED};
  std::vector<std::vector<WicPair>> by_split[3];  // train, validation, test
  for (const WordnetLemma& lemma : wordnet.lemmas) {
    std::vector<WicPair> pairs = lemma_pairs(wordnet, lemma, options.max_pairs_per_lemma, rng);
    if (pairs.empty()) continue;
    by_split[static_cast<int>(wordnet_wic_split(lemma.lemma))].push_back(std::move(pairs));
  }
  WordNetWicData data;
  fill_split(std::move(by_split[0]), options.max_train, rng, data.train);
  fill_split(std::move(by_split[1]), options.max_validation, rng, data.validation);
  fill_split(std::move(by_split[2]), options.max_test, rng, data.test);
  return data;
}

namespace {

nlohmann::json pair_json(const WicPair& p, size_t idx) {
  return {{"word", p.word},           {"sentence1", p.sentence1},
          {"sentence2", p.sentence2}, {"idx", idx},
          {"label", p.label},         {"start1", p.start1},
          {"end1", p.end1},           {"start2", p.start2},
          {"end2", p.end2},           {"pos", std::string(1, p.pos)}};
}

}  // namespace

void write_wordnet_wic(const WordNetWicData& data, const std::string& out_dir) {
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  SP_CHECK(!ec, "[wordnet_wic] cannot create ", out_dir, ": ", ec.message());
  const std::pair<const char*, const std::vector<WicPair>*> files[] = {
      {"train.jsonl", &data.train}, {"val.jsonl", &data.validation}, {"test.jsonl", &data.test}};
  for (const auto& [name, pairs] : files) {
    std::string text;
    for (size_t i = 0; i < pairs->size(); ++i) text += pair_json((*pairs)[i], i).dump() + "\n";
    write_file_atomic((std::filesystem::path(out_dir) / name).string(), text, "[wordnet_wic]");
  }
}

namespace {

// inputs "sentence1: .. sentence2: .. word: ..", targets False / True.
class WordNetWicTask : public WordNetTask<WordNetWicData, WicPair> {
 public:
  explicit WordNetWicTask(TaskOptions options)
      : WordNetTask("wordnet_wic", {"False", "True"}, std::move(options)) {}

 private:
  WordNetWicData make_data(const std::string& wordnet_dir, uint64_t seed) const override {
    WordNetWicOptions options;
    options.seed = seed;
    return make_wordnet_wic(read_wordnet_senses(wordnet_dir), options);
  }

  TaskExample row_example(const std::string& split, const std::string& idx,
                          const WicPair& p) const override {
    return example(split, idx, p.sentence1, p.sentence2, p.word, p.label ? 1 : 0);
  }

  TaskExample built_example(const std::string& split, const std::string& idx,
                            const JsonlRecord& r) const override {
    const int label =
        has_label(r, split, r.value, "", "label") ? (bool_field(r, "label") ? 1 : 0) : -1;
    return example(split, idx, r.string_field("sentence1"), r.string_field("sentence2"),
                   r.string_field("word"), label);
  }

  TaskExample example(const std::string& split, const std::string& idx, const std::string& s1,
                      const std::string& s2, const std::string& word, int label) const {
    return make_example(example_id(name_, split, idx),
                        join_fields(options_.task_prefix, name_,
                                    {{"sentence1", s1}, {"sentence2", s2}, {"word", word}}),
                        label);
  }
};

SP_REGISTER_TASK(wordnet_wic, "wordnet_wic",
                 [](const TaskOptions& options) -> std::unique_ptr<Task> {
                   return std::make_unique<WordNetWicTask>(options);
                 });

}  // namespace
}  // namespace sp
