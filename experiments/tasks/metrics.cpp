#include "experiments/tasks/metrics.h"

#include <algorithm>
#include <iterator>
#include <map>
#include <set>
#include <string_view>

#include "experiments/tasks/unicode_tables.h"
#include "models/tokenizer/utf8.h"
#include "tensor/error.h"

namespace sp {
namespace {

void check_sizes(const char* metric, size_t targets, size_t predictions) {
  SP_CHECK(targets == predictions, "[", metric, "] ", targets, " targets but ", predictions,
           " predictions");
  SP_CHECK(targets > 0, "[", metric, "] no examples to score");
}

// Python's string.punctuation.
bool is_ascii_punctuation(char c) {
  return (c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') ||
         (c >= '{' && c <= '~');
}

// Whether c lies in one of the sorted, disjoint ranges.
template <size_t N>
bool in_ranges(const unicode_tables::Range (&ranges)[N], char32_t c) {
  const auto* it =
      std::upper_bound(std::begin(ranges), std::end(ranges), c,
                       [](char32_t v, const unicode_tables::Range& r) { return v < r.first; });
  return it != std::begin(ranges) && c <= (it - 1)->last;
}

// A character of a \w word for the \b of remove_articles: Python's \w on str patterns,
// chr(c).isalnum() or c == '_'.
bool is_word_char(char32_t c) { return in_ranges(unicode_tables::kWordRanges, c); }

// Python's full lowercase mapping of c (one or more code points, U+0130 lowers to two), or
// nullptr when chr(c).lower() is c itself. U+03A3 is not here: see lower_sigma.
const char32_t* lower_mapping(char32_t c) {
  const auto* it = std::lower_bound(
      std::begin(unicode_tables::kLowerMap), std::end(unicode_tables::kLowerMap), c,
      [](const unicode_tables::LowerEntry& e, char32_t v) { return e.from < v; });
  return it != std::end(unicode_tables::kLowerMap) && it->from == c ? it->to : nullptr;
}

// The lowercase of the capital sigma at cps[i], as CPython's handle_capital_sigma: final
// sigma when a cased letter comes before it and none after it, skipping case-ignorable
// code points both ways (Unicode's Final_Sigma); otherwise the ordinary small sigma.
char32_t lower_sigma(const std::vector<char32_t>& cps, size_t i) {
  auto ignorable = [](char32_t c) { return in_ranges(unicode_tables::kCaseIgnorableRanges, c); };
  auto cased = [](char32_t c) { return in_ranges(unicode_tables::kCasedRanges, c); };
  size_t j = i;
  while (j > 0 && ignorable(cps[j - 1])) --j;
  bool final_sigma = j > 0 && cased(cps[j - 1]);
  if (final_sigma) {
    size_t k = i + 1;
    while (k < cps.size() && ignorable(cps[k])) ++k;
    final_sigma = k == cps.size() || !cased(cps[k]);
  }
  return final_sigma ? 0x3C2 : 0x3C3;
}

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

// One code point of a lowercased text and its UTF-8 (a malformed input byte, read as
// U+FFFD, keeps its own byte).
struct LoweredChar {
  char32_t c;
  std::string utf8;
};

// Python's str.lower() on UTF-8 text: the full Unicode mapping, code point by code point,
// with the Final_Sigma rule for U+03A3.
std::vector<LoweredChar> python_lower(std::string_view text) {
  std::vector<char32_t> cps;
  std::vector<std::string_view> own;  // each code point's bytes
  for (size_t i = 0; i < text.size();) {
    size_t len = 1;
    cps.push_back(utf8::decode(text, i, &len));
    own.push_back(text.substr(i, len));
    i += len;
  }
  std::vector<LoweredChar> out;
  out.reserve(cps.size());
  for (size_t i = 0; i < cps.size(); ++i) {
    const char32_t c = cps[i];
    if (c == 0x3A3) {
      const char32_t lower = lower_sigma(cps, i);
      std::string b;
      append_utf8(b, lower);
      out.push_back({lower, std::move(b)});
    } else if (const char32_t* lower = lower_mapping(c)) {
      for (size_t k = 0; k < unicode_tables::kMaxLowerLength && lower[k] != 0; ++k) {
        std::string b;
        append_utf8(b, lower[k]);
        out.push_back({lower[k], std::move(b)});
      }
    } else {
      out.push_back({c, std::string(own[i])});
    }
  }
  return out;
}

// Python's str.split() with no argument: runs of Unicode whitespace separate words.
std::vector<std::string> split_unicode_whitespace(const std::string& s) {
  std::vector<std::string> words;
  std::string word;
  for (size_t i = 0; i < s.size();) {
    size_t len = 1;
    const char32_t c = utf8::decode(s, i, &len);
    if (utf8::is_space(c)) {
      if (!word.empty()) words.push_back(std::move(word));
      word.clear();
    } else {
      word.append(s, i, len);
    }
    i += len;
  }
  if (!word.empty()) words.push_back(std::move(word));
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
  // Lowercase the whole text (Final_Sigma looks at the neighbours), then drop ASCII
  // punctuation, as T5 does in that order.
  std::vector<char32_t> cps;
  std::vector<std::string> bytes;  // each kept code point's UTF-8
  for (LoweredChar& l : python_lower(text)) {
    if (l.c < 0x80 && is_ascii_punctuation(static_cast<char>(l.c))) continue;
    cps.push_back(l.c);
    bytes.push_back(std::move(l.utf8));
  }
  // Articles become a space, as re.sub(r"\b(a|an|the)\b", " ", s) does.
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < cps.size()) {
    if (is_word_char(cps[i]) && (i == 0 || !is_word_char(cps[i - 1]))) {
      size_t j = i;
      std::string word;
      while (j < cps.size() && is_word_char(cps[j])) word += bytes[j++];
      out += (word == "a" || word == "an" || word == "the") ? std::string(" ") : word;
      i = j;
    } else {
      out += bytes[i++];
    }
  }
  std::string joined;
  for (const std::string& w : split_unicode_whitespace(out)) {
    if (!joined.empty()) joined.push_back(' ');
    joined += w;
  }
  return joined;
}

SquadScore squad_max_over_answers(const std::vector<std::string>& answers,
                                  const std::string& prediction) {
  SP_CHECK(!answers.empty(), "[squad] no gold answers to compare the prediction with");
  const std::string pred = normalize_squad(prediction);
  const std::vector<std::string> pred_tokens = split_unicode_whitespace(pred);
  SquadScore best;
  for (const std::string& answer : answers) {
    const std::string gold = normalize_squad(answer);
    best.em = std::max(best.em, gold == pred ? 1.0 : 0.0);
    best.f1 = std::max(best.f1, token_f1(split_unicode_whitespace(gold), pred_tokens));
  }
  return best;
}

int wsc_simple_class(const std::string& prediction, const std::string& referent) {
  static const std::set<std::string> kDeterminers = {
      "a",    "an",   "few", "her",   "his",   "each", "every", "many",  "much",  "my",  "our",
      "some", "that", "the", "their", "these", "this", "those", "which", "whose", "your"};
  // clean(): strip, lowercase, drop determiners, splitting on single spaces as T5 does; the
  // words of " ".join(kept).split(" "), so nothing kept reads as one empty word.
  auto clean = [&](const std::string& s) {
    const std::string_view stripped = utf8::strip(s);
    std::string lower;
    for (const LoweredChar& l : python_lower(stripped)) lower += l.utf8;
    std::vector<std::string> kept;
    for (std::string& w : split_on_space(lower))
      if (!kDeterminers.count(w)) kept.push_back(std::move(w));
    if (kept.empty()) kept.emplace_back();
    return kept;
  };
  const std::vector<std::string> pred = clean(prediction);
  const std::vector<std::string> ref = clean(referent);
  // An empty prediction is -1, not 0, so it cannot match a False label by accident.
  if (pred.size() == 1 && pred[0].empty()) return -1;
  auto has_quote = [](const std::vector<std::string>& words) {
    return std::any_of(words.begin(), words.end(),
                       [](const std::string& w) { return w.find('\'') != std::string::npos; });
  };
  if (has_quote(pred) != has_quote(ref)) return 0;
  const std::set<std::string> p(pred.begin(), pred.end()), r(ref.begin(), ref.end());
  return (std::includes(r.begin(), r.end(), p.begin(), p.end()) ||
          std::includes(p.begin(), p.end(), r.begin(), r.end()))
             ? 1
             : 0;
}

}  // namespace sp
