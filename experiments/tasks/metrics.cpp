#include "experiments/tasks/metrics.h"

#include <algorithm>
#include <map>
#include <set>

#include "tensor/error.h"

namespace sp {
namespace {

void check_sizes(const char* metric, size_t targets, size_t predictions) {
  SP_CHECK(targets == predictions, "[", metric, "] ", targets, " targets but ", predictions,
           " predictions");
  SP_CHECK(targets > 0, "[", metric, "] no examples to score");
}

char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// Python's string.punctuation.
bool is_ascii_punctuation(char c) {
  return (c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') ||
         (c >= '{' && c <= '~');
}

// A character of a \w word for the \b of remove_articles: ASCII letters, digits and '_',
// and every byte of a non-ASCII (UTF-8) character, which Python's Unicode \w also counts
// for letters.
bool is_word_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '_';
}

std::vector<std::string> split_whitespace(const std::string& s) {
  std::vector<std::string> words;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && is_space(s[i])) ++i;
    size_t j = i;
    while (j < s.size() && !is_space(s[j])) ++j;
    if (j > i) words.push_back(s.substr(i, j - i));
    i = j;
  }
  return words;
}

// Python's s.split(" "): every single space separates, so empty words survive.
std::vector<std::string> split_on_space(const std::string& s) {
  std::vector<std::string> words;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == ' ') {
      words.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  return words;
}

double token_f1(const std::vector<std::string>& target, const std::vector<std::string>& pred) {
  std::map<std::string, int> counts;
  for (const auto& w : target) ++counts[w];
  int same = 0;
  for (const auto& w : pred) {
    auto it = counts.find(w);
    if (it != counts.end() && it->second > 0) {
      --it->second;
      ++same;
    }
  }
  if (same == 0) return 0.0;
  const double precision = static_cast<double>(same) / pred.size();
  const double recall = static_cast<double>(same) / target.size();
  return 2 * precision * recall / (precision + recall);
}

}  // namespace

int label_index(const std::vector<std::string>& labels, const std::string& text) {
  for (size_t i = 0; i < labels.size(); ++i)
    if (labels[i] == text) return static_cast<int>(i);
  return -1;
}

double accuracy_score(const std::vector<int>& targets, const std::vector<int>& predictions) {
  check_sizes("accuracy", targets.size(), predictions.size());
  size_t right = 0;
  for (size_t i = 0; i < targets.size(); ++i) right += (predictions[i] == targets[i]);
  return 100.0 * right / targets.size();
}

double binary_f1(const std::vector<int>& targets, const std::vector<int>& predictions) {
  check_sizes("f1", targets.size(), predictions.size());
  size_t tp = 0, fp = 0, fn = 0;
  for (size_t i = 0; i < targets.size(); ++i) {
    SP_CHECK(targets[i] == 0 || targets[i] == 1, "[f1] target ", i, " is class ", targets[i],
             ", expected 0 or 1");
    const int p = (predictions[i] == 0 || predictions[i] == 1) ? predictions[i] : 1 - targets[i];
    tp += (p == 1 && targets[i] == 1);
    fp += (p == 1 && targets[i] == 0);
    fn += (p == 0 && targets[i] == 1);
  }
  if (tp == 0) return 0.0;
  return 100.0 * 2.0 * tp / (2.0 * tp + fp + fn);
}

double macro_f1(const std::vector<int>& targets, const std::vector<int>& predictions,
                int num_classes) {
  check_sizes("macro_f1", targets.size(), predictions.size());
  SP_CHECK(num_classes > 0, "[macro_f1] num_classes is ", num_classes);
  std::vector<size_t> tp(num_classes), fp(num_classes), fn(num_classes);
  for (size_t i = 0; i < targets.size(); ++i) {
    const int t = targets[i], p = predictions[i];
    SP_CHECK(t >= 0 && t < num_classes, "[macro_f1] target ", i, " is class ", t, ", expected [0, ",
             num_classes, ")");
    if (p == t) {
      ++tp[t];
    } else {
      ++fn[t];
      if (p >= 0 && p < num_classes) ++fp[p];
    }
  }
  double sum = 0;
  for (int c = 0; c < num_classes; ++c)
    if (tp[c] > 0) sum += 2.0 * tp[c] / (2.0 * tp[c] + fp[c] + fn[c]);
  return 100.0 * sum / num_classes;
}

double group_exact_match(const std::vector<int>& targets, const std::vector<int>& predictions,
                         const std::vector<std::string>& groups) {
  check_sizes("exact_match", targets.size(), predictions.size());
  SP_CHECK(groups.size() == targets.size(), "[exact_match] ", groups.size(), " groups for ",
           targets.size(), " targets");
  std::map<std::string, bool> all_right;
  for (size_t i = 0; i < targets.size(); ++i) {
    auto [it, inserted] = all_right.emplace(groups[i], true);
    it->second = it->second && predictions[i] == targets[i];
  }
  size_t right = 0;
  for (const auto& [group, ok] : all_right) right += ok;
  return 100.0 * right / all_right.size();
}

std::string normalize_squad(const std::string& text) {
  std::string s;
  s.reserve(text.size());
  for (char c : text)
    if (!is_ascii_punctuation(c)) s.push_back(ascii_lower(c));
  // Articles become a space, as re.sub(r"\b(a|an|the)\b", " ", s) does.
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    if (is_word_char(s[i]) && (i == 0 || !is_word_char(s[i - 1]))) {
      size_t j = i;
      while (j < s.size() && is_word_char(s[j])) ++j;
      const std::string word = s.substr(i, j - i);
      out += (word == "a" || word == "an" || word == "the") ? std::string(" ") : word;
      i = j;
    } else {
      out.push_back(s[i++]);
    }
  }
  std::string joined;
  for (const std::string& w : split_whitespace(out)) {
    if (!joined.empty()) joined.push_back(' ');
    joined += w;
  }
  return joined;
}

SquadScore squad_max_over_answers(const std::vector<std::string>& answers,
                                  const std::string& prediction) {
  SP_CHECK(!answers.empty(), "[squad] no gold answers to compare the prediction with");
  const std::string pred = normalize_squad(prediction);
  const std::vector<std::string> pred_tokens = split_whitespace(pred);
  SquadScore best;
  for (const std::string& answer : answers) {
    const std::string gold = normalize_squad(answer);
    best.em = std::max(best.em, gold == pred ? 1.0 : 0.0);
    best.f1 = std::max(best.f1, token_f1(split_whitespace(gold), pred_tokens));
  }
  return best;
}

bool wsc_names_referent(const std::string& prediction, const std::string& referent) {
  static const std::set<std::string> kDeterminers = {
      "a",    "an",   "few", "her",   "his",   "each", "every", "many",  "much",  "my",  "our",
      "some", "that", "the", "their", "these", "this", "those", "which", "whose", "your"};
  // Strip, lowercase, and drop determiners (splitting on single spaces, as T5 does).
  auto clean = [&](const std::string& s) {
    size_t b = 0, e = s.size();
    while (b < e && is_space(s[b])) ++b;
    while (e > b && is_space(s[e - 1])) --e;
    std::string lower;
    for (size_t i = b; i < e; ++i) lower.push_back(ascii_lower(s[i]));
    std::vector<std::string> kept;
    for (std::string& w : split_on_space(lower))
      if (!kDeterminers.count(w)) kept.push_back(std::move(w));
    return kept;
  };
  const std::vector<std::string> pred = clean(prediction);
  const std::vector<std::string> ref = clean(referent);
  auto joined_empty = [](const std::vector<std::string>& words) {
    return std::all_of(words.begin(), words.end(),
                       [](const std::string& w) { return w.empty(); }) &&
           words.size() <= 1;
  };
  if (joined_empty(pred)) return false;
  auto has_quote = [](const std::vector<std::string>& words) {
    return std::any_of(words.begin(), words.end(),
                       [](const std::string& w) { return w.find('\'') != std::string::npos; });
  };
  if (has_quote(pred) != has_quote(ref)) return false;
  const std::set<std::string> p(pred.begin(), pred.end()), r(ref.begin(), ref.end());
  return std::includes(r.begin(), r.end(), p.begin(), p.end()) ||
         std::includes(p.begin(), p.end(), r.begin(), r.end());
}

}  // namespace sp
