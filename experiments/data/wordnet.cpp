#include "experiments/data/wordnet.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_set>

#include "experiments/data/document_reader.h"
#include "experiments/data/sha256.h"
#include "tensor/error.h"

namespace sp {
namespace {

// A lemma as written in the database -> as written in text: "physical_object" ->
// "physical object"; adjectives carry a syntactic marker, "long(a)" -> "long".
std::string clean_lemma(std::string_view word) {
  if (!word.empty() && word.back() == ')') {
    const size_t open = word.rfind('(');
    if (open != std::string_view::npos) word = word.substr(0, open);
  }
  std::string out(word);
  for (char& c : out)
    if (c == '_') c = ' ';
  return out;
}

// The passages between paired double quotes, left to right, spaces around them stripped;
// an unclosed quote and all-space passages give nothing.
void add_quoted(std::string_view text, std::vector<std::string>& out) {
  size_t pos = 0;
  while (true) {
    const size_t open = text.find('"', pos);
    if (open == std::string_view::npos) return;
    const size_t close = text.find('"', open + 1);
    if (close == std::string_view::npos) return;
    const std::string_view s = text.substr(open + 1, close - open - 1);
    const size_t b = s.find_first_not_of(' ');
    if (b != std::string_view::npos) out.emplace_back(s.substr(b, s.find_last_not_of(' ') - b + 1));
    pos = close + 1;
  }
}

// Data and index lines start with an offset or a lemma; licence lines start with a space.
bool is_header(std::string_view line) {
  return line.empty() || line.front() == ' ' || line.front() == '\r';
}

struct PosFiles {
  char pos;
  const char* suffix;
};
// The order read_wordnet_senses reads them (it decides the lemma order of the task).
constexpr PosFiles kPos[] = {{'n', "noun"}, {'v', "verb"}, {'a', "adj"}, {'r', "adv"}};

char pos_of_data_file(const std::string& name) {
  for (const PosFiles& p : kPos)
    if (name == str_cat("data.", p.suffix)) return p.pos;
  fail(str_cat("[wordnet] ", name, " is not a WordNet data file"));
}

// Calls fn(synset) for every synset of a data file, in file order.
template <typename Fn>
void for_each_synset(const std::string& path, char pos, Fn&& fn) {
  std::ifstream in(path, std::ios::binary);
  SP_CHECK(in.is_open(), "[wordnet] cannot open ", path);
  std::string line;
  int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (auto synset = parse_synset_line(line, pos, str_cat(path, ":", line_no))) fn(*synset);
  }
}

}  // namespace

WordnetSynset split_gloss(std::string_view gloss) {
  WordnetSynset out;
  std::vector<std::string> parts;
  std::string cur;
  bool quoted = false;
  for (char c : gloss) {
    if (c == '"') quoted = !quoted;
    if (c == ';' && !quoted) {
      parts.push_back(normalize_whitespace(cur));
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  parts.push_back(normalize_whitespace(cur));
  // Splitting happens outside quotes only, so quote pairs never straddle parts and the
  // parts' passages in order are the gloss's passages in order.
  for (std::string& part : parts) {
    if (part.empty()) continue;
    add_quoted(part, out.sentences);
    (part.front() == '"' ? out.examples : out.definitions).push_back(std::move(part));
  }
  return out;
}

std::optional<WordnetSynset> parse_synset_line(std::string_view line, char pos,
                                               const std::string& label) {
  if (is_header(line)) return std::nullopt;
  const size_t bar = line.find('|');
  SP_CHECK(bar != std::string_view::npos, "[wordnet] ", label,
           ": a synset line has no '|' before its gloss");
  WordnetSynset synset = split_gloss(line.substr(bar + 1));
  synset.pos = pos;
  std::istringstream fields{std::string(line.substr(0, bar))};
  std::string offset, lex_filenum, ss_type, w_cnt_hex;
  fields >> offset >> lex_filenum >> ss_type >> w_cnt_hex;
  const auto [end, ec] =
      std::from_chars(offset.data(), offset.data() + offset.size(), synset.offset);
  SP_CHECK(ec == std::errc() && end == offset.data() + offset.size() && synset.offset >= 0,
           "[wordnet] ", label, ": expected a synset offset at the start of the line, got \"",
           offset, "\"");
  SP_CHECK(!w_cnt_hex.empty(), "[wordnet] ", label, ": expected offset, lex_filenum, ss_type ",
           "and w_cnt before the words");
  {
    const auto [lex_end, lex_ec] = std::from_chars(
        lex_filenum.data(), lex_filenum.data() + lex_filenum.size(), synset.lex_filenum);
    SP_CHECK(lex_ec == std::errc() && lex_end == lex_filenum.data() + lex_filenum.size() &&
                 synset.lex_filenum >= 0,
             "[wordnet] ", label, ": lex_filenum \"", lex_filenum, "\" is not a number");
  }
  int64_t w_cnt = 0;
  try {
    w_cnt = std::stoll(w_cnt_hex, nullptr, 16);
  } catch (const std::exception&) {
    fail(str_cat("[wordnet] ", label, ": word count \"", w_cnt_hex, "\" is not hexadecimal"));
  }
  for (int64_t i = 0; i < w_cnt; ++i) {
    std::string word, lex_id;
    fields >> word >> lex_id;
    SP_CHECK(!lex_id.empty(), "[wordnet] ", label, ": expected ", w_cnt, " words, found ", i);
    std::string lemma = clean_lemma(word);
    if (!lemma.empty()) synset.lemmas.push_back(std::move(lemma));
  }
  return synset;
}

std::string wordnet_document(const WordnetSynset& synset, const WordnetExclusion& exclude) {
  if (exclude.synset && exclude.synset(synset)) return "";
  // The gloss parts that quote no excluded sentence.
  std::vector<std::string> held_out;
  if (exclude.sentence)
    for (const std::string& s : synset.sentences)
      if (exclude.sentence(synset, s)) held_out.push_back(s);
  const auto kept = [&](const std::vector<std::string>& parts) {
    std::vector<std::string> out;
    for (const std::string& part : parts) {
      const bool quotes_one = std::any_of(held_out.begin(), held_out.end(), [&](const auto& s) {
        return part.find(s) != std::string::npos;
      });
      if (!quotes_one) out.push_back(part);
    }
    return out;
  };
  const std::vector<std::string> definitions = kept(synset.definitions);
  const std::vector<std::string> examples = kept(synset.examples);
  std::string doc;
  for (size_t i = 0; i < synset.lemmas.size(); ++i) doc += (i ? ", " : "") + synset.lemmas[i];
  if (!definitions.empty()) {
    doc += ": ";
    for (size_t i = 0; i < definitions.size(); ++i) doc += (i ? "; " : "") + definitions[i];
  }
  for (size_t i = 0; i < examples.size(); ++i) doc += (i ? " " : ". ") + examples[i];
  return normalize_whitespace(doc);
}

void fail_missing_wordnet(const std::string& dir, const std::string& problem) {
  fail(str_cat("[wordnet] no WordNet database in ", dir, ": ", problem,
               ": install Debian's wordnet-base (scripts/install-deps.sh does) or name "
               "another WordNet directory"));
}

const std::vector<std::string>& wordnet_data_files() {
  static const std::vector<std::string> files = {"data.adj", "data.adv", "data.noun", "data.verb"};
  return files;
}

std::vector<std::string> read_wordnet_documents(const std::string& dir,
                                                std::vector<WordnetFile>* files,
                                                const WordnetExclusion& exclude) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    fail_missing_wordnet(dir, "the directory does not exist");
  // First every synset, and the sentences excluded anywhere: the same sentence quoted under
  // another synset (another lemma's) is left out there too.
  std::vector<WordnetFile> read;
  std::vector<std::vector<WordnetSynset>> synsets;
  std::unordered_set<std::string> held_out;
  for (const std::string& name : wordnet_data_files()) {
    const std::string path = (std::filesystem::path(dir) / name).string();
    if (!std::filesystem::is_regular_file(path, ec))
      fail_missing_wordnet(dir, path + " is missing");
    read.push_back({path, 0, sha256_file_hex(path)});
    synsets.emplace_back();
    for_each_synset(path, pos_of_data_file(name), [&](const WordnetSynset& synset) {
      if (exclude.sentence)  // an excluded synset's too: the sentence may be quoted elsewhere
        for (const std::string& s : synset.sentences)
          if (exclude.sentence(synset, s)) held_out.insert(s);
      if (exclude.synset && exclude.synset(synset)) {
        ++read.back().excluded_synsets;
        return;
      }
      synsets.back().push_back(synset);
    });
  }
  WordnetExclusion by_text;
  if (!held_out.empty())
    by_text.sentence = [&](const WordnetSynset&, const std::string& s) {
      return held_out.count(s) > 0;
    };
  std::vector<std::string> docs;
  for (size_t f = 0; f < read.size(); ++f) {
    for (const WordnetSynset& synset : synsets[f]) {
      for (const std::string& s : synset.sentences)
        read[f].excluded_sentences += static_cast<int64_t>(held_out.count(s));
      std::string doc = wordnet_document(synset, by_text);
      if (doc.empty()) continue;
      docs.push_back(std::move(doc));
      ++read[f].documents;
    }
  }
  if (files) *files = std::move(read);
  return docs;
}

std::vector<WordnetLemma> read_wordnet_index(const std::string& path, char pos) {
  std::ifstream in(path, std::ios::binary);
  SP_CHECK(in.is_open(), "[wordnet] cannot open ", path);
  std::vector<WordnetLemma> lemmas;
  std::string line;
  int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (is_header(line)) continue;
    std::istringstream f(line);
    WordnetLemma entry;
    std::string file_pos;
    int64_t synset_cnt = 0, p_cnt = 0, sense_cnt = 0, tagsense_cnt = 0;
    f >> entry.lemma >> file_pos >> synset_cnt >> p_cnt;
    SP_CHECK(!f.fail() && synset_cnt > 0 && p_cnt >= 0, "[wordnet] ", path, ":", line_no,
             ": expected \"lemma pos synset_cnt p_cnt ...\"");
    std::string symbol;
    for (int64_t i = 0; i < p_cnt; ++i) f >> symbol;
    f >> sense_cnt >> tagsense_cnt;
    for (int64_t i = 0; i < synset_cnt; ++i) {
      int64_t offset = -1;
      f >> offset;
      SP_CHECK(!f.fail() && offset >= 0, "[wordnet] ", path, ":", line_no, ": expected ",
               synset_cnt, " synset offsets for '", entry.lemma, "'");
      entry.synsets.push_back(offset);
    }
    entry.pos = pos;
    lemmas.push_back(std::move(entry));
  }
  return lemmas;
}

WordnetSenses read_wordnet_senses(const std::string& dir) {
  WordnetSenses senses;
  int found = 0;
  for (const PosFiles& p : kPos) {
    const std::filesystem::path data = std::filesystem::path(dir) / str_cat("data.", p.suffix);
    const std::filesystem::path index = std::filesystem::path(dir) / str_cat("index.", p.suffix);
    std::error_code ec;
    if (!std::filesystem::is_regular_file(data, ec) || !std::filesystem::is_regular_file(index, ec))
      continue;
    for_each_synset(data.string(), p.pos, [&](WordnetSynset& synset) {
      if (!synset.sentences.empty())
        senses.sentences[{p.pos, synset.offset}] = std::move(synset.sentences);
    });
    for (WordnetLemma& lemma : read_wordnet_index(index.string(), p.pos))
      senses.lemmas.push_back(std::move(lemma));
    ++found;
  }
  if (found == 0)
    fail_missing_wordnet(dir, "expected data.noun and index.noun (or the verb, adj or adv pair)");
  return senses;
}

}  // namespace sp
