#pragma once
// Princeton WordNet 3.0's database files as Debian's wordnet-base installs them
// (/usr/share/wordnet), read for two users:
//  - the built-in pretraining corpus (corpus_builder): each synset of data.{adj,adv,noun,verb}
//    becomes one document pairing its words with their meanings and showing them in use:
//      "physical object, object: a tangible and visible entity; an entity that can cast a
//       shadow. "it was full of rackets, balls and other objects""
//  - the built-in task wordnet_wic (experiments/tasks/wordnet_wic): a lemma's senses from
//    index.<pos> and the example sentences quoted in each sense's gloss.
//
// A data file line is
//   offset lex_filenum ss_type w_cnt word lex_id [word lex_id...] p_cnt [pointer...] | gloss
// with w_cnt in hex and words with '_' for spaces; the licence header lines start with a
// space. An index file line is
//   lemma pos synset_cnt p_cnt [ptr_symbol...] sense_cnt tagsense_cnt synset_offset...
// with the offsets (into data.<pos>) most frequent sense first.
//
// The gloss is split on ';' outside double quotes (examples may contain ';') into parts,
// whitespace normalized, empty parts dropped. A part that starts with '"' is an example, the
// rest are definitions. Two views of the examples are kept because the data is irregular:
//  - examples: the example parts as written, quotes and any attribution kept
//    ("\"the pleasures of the table\"- John Galsworthy"); this is corpus text;
//  - sentences: every quoted passage of the gloss in gloss order, quotes and surrounding
//    spaces stripped; this includes examples a definition gives after a colon
//    ("more than necessary: \"long on brains\"" -> "long on brains") and leaves out
//    attributions, so it is what the task pairs. An unclosed quote contributes nothing.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sp {

constexpr const char* kDefaultWordnetDir = "/usr/share/wordnet";

struct WordnetSynset {
  char pos = 'n';      // of the file it came from: n, v, a or r (satellites 's' read as 'a')
  int64_t offset = 0;  // its byte offset in data.<pos>, how index files name it
  int lex_filenum = 0;  // its lexicographer file (5: noun.animal), WordNet's supersense
  std::vector<std::string> lemmas;       // as text: "physical object", "long" (not "long(a)")
  std::vector<std::string> definitions;  // gloss parts that are not examples
  std::vector<std::string> examples;     // example parts as written (see above)
  std::vector<std::string> sentences;    // quoted passages, quotes stripped (see above)
};

// One data file line -> its synset; std::nullopt for the licence header and blank lines.
// Throws sp::Error naming label (file:line) when the line is malformed.
std::optional<WordnetSynset> parse_synset_line(std::string_view line, char pos,
                                               const std::string& label);

// The gloss split into definitions, examples and sentences, as described above (only those
// three fields of the result are set).
WordnetSynset split_gloss(std::string_view gloss);

// What the corpus leaves out of WordNet (the built-in tasks' held-out text: see
// experiments/tasks/wordnet_held_out.h); unset members leave nothing out.
struct WordnetExclusion {
  std::function<bool(const WordnetSynset&)> synset;  // the whole document
  // A quoted sentence (one of synset.sentences): every gloss part quoting it is left out.
  std::function<bool(const WordnetSynset&, const std::string& sentence)> sentence;
};

// The corpus document of a synset: "lemma, lemma: definition; definition. "example"
// "example"", whitespace normalized, less what exclude leaves out; empty when the synset
// has no text at all or is excluded.
std::string wordnet_document(const WordnetSynset& synset, const WordnetExclusion& exclude = {});

// Throws the one "no WordNet database" error: names dir and what is wrong with it, and says
// how to install the database.
[[noreturn]] void fail_missing_wordnet(const std::string& dir, const std::string& problem);

// ---- the corpus ----

// The data files the corpus reads, in the order it reads them.
const std::vector<std::string>& wordnet_data_files();  // {"data.adj", "data.adv", ...}

struct WordnetFile {
  std::string path;
  int64_t documents = 0;
  std::string sha256;              // of the file's bytes
  int64_t excluded_synsets = 0;    // left out whole (WordnetExclusion::synset)
  int64_t excluded_sentences = 0;  // quoted sentences left out (WordnetExclusion::sentence)
};

// Every synset document of dir's data files, in file order (empty documents skipped), less
// what exclude leaves out; a sentence excluded in one synset is left out wherever quoted. Throws
// the missing-database error when dir or one of its data files is missing.
std::vector<std::string> read_wordnet_documents(const std::string& dir,
                                                std::vector<WordnetFile>* files,
                                                const WordnetExclusion& exclude = {});

// ---- the senses (wordnet_wic) ----

struct WordnetLemma {
  std::string lemma;             // lowercase, words joined by '_' ("bank", "take_off")
  char pos = 'n';                // n, v, a or r
  std::vector<int64_t> synsets;  // offsets into data.<pos>, most frequent sense first
};

struct WordnetSenses {
  // (pos, offset) -> the synset's sentences (see above); synsets without any are left out.
  std::map<std::pair<char, int64_t>, std::vector<std::string>> sentences;
  std::vector<WordnetLemma> lemmas;  // in index-file order, pos by pos (n, v, a, r)
};

// The lemmas of index.<pos> (pos: n, v, a or r) in file order. Throws naming file and line.
std::vector<WordnetLemma> read_wordnet_index(const std::string& path, char pos);

// Reads dir/{data,index}.{noun,verb,adj,adv}; a pos whose pair of files is missing is
// skipped, but at least one pair must exist (else the missing-database error).
WordnetSenses read_wordnet_senses(const std::string& dir);

}  // namespace sp
