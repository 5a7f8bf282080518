#include "experiments/tasks/wordnet.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tensor/error.h"

namespace sp {
namespace {

struct PosFiles {
  char pos;
  const char* suffix;
};
constexpr PosFiles kPos[] = {{'n', "noun"}, {'v', "verb"}, {'a', "adj"}, {'r', "adv"}};

// Lines of the database start with an offset; the license header lines start with spaces.
bool is_header(const std::string& line) { return line.empty() || line[0] == ' '; }

void read_data(const std::string& path, char pos, WordNet& wn) {
  std::ifstream in(path, std::ios::binary);
  SP_CHECK(in.good(), "[wordnet] cannot open ", path);
  std::string line;
  int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (is_header(line)) continue;
    const size_t bar = line.find(" | ");
    SP_CHECK(bar != std::string::npos, "[wordnet] ", path, ":", line_no,
             ": expected a gloss after \" | \"");
    int64_t offset = -1;
    std::istringstream fields(line.substr(0, bar));
    fields >> offset;
    SP_CHECK(!fields.fail() && offset >= 0, "[wordnet] ", path, ":", line_no,
             ": expected a synset offset at the start of the line");
    std::vector<std::string> examples = gloss_examples(line.substr(bar + 3));
    if (!examples.empty()) wn.examples[{pos, offset}] = std::move(examples);
  }
}

void read_index(const std::string& path, char pos, WordNet& wn) {
  std::ifstream in(path, std::ios::binary);
  SP_CHECK(in.good(), "[wordnet] cannot open ", path);
  std::string line;
  int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (is_header(line)) continue;
    // lemma pos synset_cnt p_cnt [ptr_symbol...] sense_cnt tagsense_cnt synset_offset...
    std::istringstream f(line);
    WordNetLemma entry;
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
    wn.lemmas.push_back(std::move(entry));
  }
}

}  // namespace

std::vector<std::string> gloss_examples(const std::string& gloss) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (true) {
    const size_t open = gloss.find('"', pos);
    if (open == std::string::npos) break;
    const size_t close = gloss.find('"', open + 1);
    if (close == std::string::npos) break;
    std::string s = gloss.substr(open + 1, close - open - 1);
    const size_t b = s.find_first_not_of(' ');
    const size_t e = s.find_last_not_of(' ');
    if (b != std::string::npos) out.push_back(s.substr(b, e - b + 1));
    pos = close + 1;
  }
  return out;
}

WordNet read_wordnet(const std::string& dir) {
  WordNet wn;
  int found = 0;
  for (const PosFiles& p : kPos) {
    const std::filesystem::path data = std::filesystem::path(dir) / str_cat("data.", p.suffix);
    const std::filesystem::path index = std::filesystem::path(dir) / str_cat("index.", p.suffix);
    std::error_code ec;
    if (!std::filesystem::is_regular_file(data, ec) || !std::filesystem::is_regular_file(index, ec))
      continue;
    read_data(data.string(), p.pos, wn);
    read_index(index.string(), p.pos, wn);
    ++found;
  }
  SP_CHECK(found > 0, "[wordnet] no WordNet database in ", dir,
           " (expected data.noun and index.noun, ...; Debian's package wordnet-base installs "
           "them in /usr/share/wordnet)");
  return wn;
}

}  // namespace sp
