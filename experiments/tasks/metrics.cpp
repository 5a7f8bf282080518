#include "experiments/tasks/metrics.h"

#include <algorithm>
#include <map>
#include <set>
#include <string_view>

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

// Python's str.lower() for ASCII, Latin-1 and Latin Extended-A (U+0130, which lowers to
// two code points, is left as it is); other code points are returned unchanged.
char32_t unicode_lower(char32_t c) {
  if ((c >= 'A' && c <= 'Z') || (c >= 0xC0 && c <= 0xDE && c != 0xD7)) return c + 0x20;
  if (c == 0x178) return 0xFF;
  const bool even_upper = (c >= 0x100 && c <= 0x137 && c != 0x130) || (c >= 0x14A && c <= 0x177);
  const bool odd_upper = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E);
  if ((even_upper && c % 2 == 0) || (odd_upper && c % 2 == 1)) return c + 1;
  return c;
}

// A character of a \w word for the \b of remove_articles, as Python's Unicode \w: ASCII
// letters, digits and '_', and non-ASCII code points except whitespace and the symbols and
// punctuation of Latin-1, General Punctuation (dashes, curly quotes) and Currency Symbols.
bool is_word_char(char32_t c) {
  if (c < 0x80)
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  if (utf8::is_space(c)) return false;
  if (c >= 0xA0 && c <= 0xBF)  // ª ² ³ µ ¹ º ¼ ½ ¾ are \w
    return c == 0xAA || c == 0xB2 || c == 0xB3 || c == 0xB5 || c == 0xB9 || c == 0xBA ||
           (c >= 0xBC && c <= 0xBE);
  return c != 0xD7 && c != 0xF7 && !(c >= 0x2000 && c <= 0x206F) && !(c >= 0x20A0 && c <= 0x20CF);
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

// c lowercased as Python's str.lower() does, appended as UTF-8; bytes (c's own encoding,
// or a malformed byte) when lowering leaves c as it is.
void append_lower(std::string& out, char32_t c, std::string_view bytes) {
  const char32_t lower = unicode_lower(c);
  if (lower == c)
    out.append(bytes);
  else
    append_utf8(out, lower);
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
  // Lowercase and drop ASCII punctuation, one code point at a time (a malformed byte is
  // kept as it is).
  std::vector<char32_t> cps;
  std::vector<std::string> bytes;  // each kept code point's UTF-8
  for (size_t i = 0; i < text.size();) {
    size_t len = 1;
    const char32_t c = utf8::decode(text, i, &len);
    const std::string_view own = std::string_view(text).substr(i, len);
    i += len;
    if (c < 0x80 && is_ascii_punctuation(static_cast<char>(c))) continue;
    std::string b;
    append_lower(b, c, own);
    cps.push_back(unicode_lower(c));
    bytes.push_back(std::move(b));
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
    for (size_t i = 0; i < stripped.size();) {
      size_t len = 1;
      const char32_t c = utf8::decode(stripped, i, &len);
      append_lower(lower, c, stripped.substr(i, len));
      i += len;
    }
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
