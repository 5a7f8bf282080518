#pragma once
// A reader for the WordNet 3.0 database files Debian's wordnet-base installs in
// /usr/share/wordnet: data.<pos> (one synset per line: its words, pointers and a gloss whose
// quoted parts are example sentences) and index.<pos> (a lemma's senses, as synset offsets,
// most frequent first). Only what the built-in word-in-context task needs is kept.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace sp {

struct WordNetLemma {
  std::string lemma;             // lowercase, words joined by '_' ("bank", "take_off")
  char pos = 'n';                // n, v, a or r
  std::vector<int64_t> synsets;  // byte offsets into data.<pos>, most frequent sense first
};

struct WordNet {
  // (pos, offset) -> the example sentences quoted in that synset's gloss, in gloss order.
  std::map<std::pair<char, int64_t>, std::vector<std::string>> examples;
  std::vector<WordNetLemma> lemmas;  // in index-file order, pos by pos (n, v, a, r)
};

// Reads dir/{data,index}.{noun,verb,adj,adv}; a missing pos file is skipped, but at least
// one pair must exist. Throws naming the file and line of a malformed entry.
WordNet read_wordnet(const std::string& dir);

// The quoted example sentences of a gloss ("a slope; \"they pulled the canoe up on the
// bank\"" -> {"they pulled the canoe up on the bank"}).
std::vector<std::string> gloss_examples(const std::string& gloss);

}  // namespace sp
