#pragma once
// Documents from Princeton WordNet's database files as Debian's wordnet-base installs them
// (/usr/share/wordnet/data.{adj,adv,noun,verb}). A synset line is
//   offset lex_filenum ss_type w_cnt word lex_id ... p_cnt pointers ... | gloss
// with w_cnt in hex, words with '_' for spaces, and a gloss of definitions and quoted
// example sentences separated by ';'. Each synset becomes one document:
//   "physical object, object: a tangible and visible entity; an entity that can cast a
//    shadow. "it was full of rackets, balls and other objects""
// so the text pairs words with their meanings and shows them in use.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sp {

// The database files, in the order they are read.
const std::vector<std::string>& wordnet_data_files();  // {"data.adj", "data.adv", ...}
constexpr const char* kDefaultWordnetDir = "/usr/share/wordnet";

// One line of a data file -> its document; std::nullopt for the licence header (lines that
// start with a space) and blank lines. Throws sp::Error naming label (file:line) when a
// synset line is malformed.
std::optional<std::string> wordnet_synset_document(std::string_view line,
                                                   const std::string& label);

struct WordnetFile {
  std::string path;
  int64_t documents = 0;
  std::string sha256;  // of the file's bytes
};

// Every synset document of dir's data files, in file order. Throws sp::Error with the
// install hint when dir or one of its data files is missing.
std::vector<std::string> read_wordnet(const std::string& dir, std::vector<WordnetFile>* files);

}  // namespace sp
