#include "experiments/data/wordnet.h"

#include <filesystem>
#include <fstream>
#include <sstream>

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

// Splits a gloss on ';' outside double quotes (examples may contain ';').
std::vector<std::string> split_gloss(std::string_view gloss) {
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
  return parts;
}

}  // namespace

const std::vector<std::string>& wordnet_data_files() {
  static const std::vector<std::string> files = {"data.adj", "data.adv", "data.noun",
                                                 "data.verb"};
  return files;
}

std::optional<std::string> wordnet_synset_document(std::string_view line,
                                                   const std::string& label) {
  if (line.empty() || line.front() == ' ' || line.front() == '\r') return std::nullopt;
  const size_t bar = line.find('|');
  SP_CHECK(bar != std::string_view::npos, "[wordnet] ", label,
           ": a synset line has no '|' before its gloss");
  std::istringstream fields{std::string(line.substr(0, bar))};
  std::string offset, lex_filenum, ss_type, w_cnt_hex;
  fields >> offset >> lex_filenum >> ss_type >> w_cnt_hex;
  SP_CHECK(!w_cnt_hex.empty(), "[wordnet] ", label, ": expected offset, lex_filenum, ss_type ",
           "and w_cnt before the words");
  int64_t w_cnt = 0;
  try {
    w_cnt = std::stoll(w_cnt_hex, nullptr, 16);
  } catch (const std::exception&) {
    fail(str_cat("[wordnet] ", label, ": word count \"", w_cnt_hex, "\" is not hexadecimal"));
  }
  std::string lemmas;
  for (int64_t i = 0; i < w_cnt; ++i) {
    std::string word, lex_id;
    fields >> word >> lex_id;
    SP_CHECK(!lex_id.empty(), "[wordnet] ", label, ": expected ", w_cnt, " words, found ", i);
    const std::string lemma = clean_lemma(word);
    if (lemma.empty()) continue;
    if (!lemmas.empty()) lemmas += ", ";
    lemmas += lemma;
  }
  std::vector<std::string> definitions, examples;
  for (std::string& part : split_gloss(line.substr(bar + 1))) {
    if (part.empty()) continue;
    (part.front() == '"' ? examples : definitions).push_back(std::move(part));
  }
  std::string doc = lemmas;
  if (!definitions.empty()) {
    doc += ": ";
    for (size_t i = 0; i < definitions.size(); ++i) doc += (i ? "; " : "") + definitions[i];
  }
  for (size_t i = 0; i < examples.size(); ++i) doc += (i ? " " : ". ") + examples[i];
  return normalize_whitespace(doc);
}

std::vector<std::string> read_wordnet(const std::string& dir, std::vector<WordnetFile>* files) {
  const char* hint =
      "install Debian's wordnet-base (scripts/install-deps.sh does) or name another "
      "directory with --wordnet-dir";
  SP_CHECK(std::filesystem::is_directory(dir), "[wordnet] no WordNet database at ", dir,
           " (the directory does not exist): ", hint);
  std::vector<std::string> docs;
  for (const std::string& name : wordnet_data_files()) {
    const std::string path = (std::filesystem::path(dir) / name).string();
    std::ifstream in(path, std::ios::binary);
    SP_CHECK(in.is_open(), "[wordnet] ", path, " is missing: ", hint);
    WordnetFile file{path, 0, sha256_file_hex(path)};
    std::string line;
    int64_t line_no = 0;
    while (std::getline(in, line)) {
      ++line_no;
      if (auto doc = wordnet_synset_document(line, str_cat(path, ":", line_no))) {
        if (doc->empty()) continue;
        docs.push_back(std::move(*doc));
        ++file.documents;
      }
    }
    if (files) files->push_back(std::move(file));
  }
  return docs;
}

}  // namespace sp
