#pragma once
// A fake WordNet database for tests: data.noun and index.noun with nouns word0..word<n-1>,
// each with two senses of two quoted example sentences (wordnet_wic's material), and a
// one-sense lemma that can make no pair. Extras on request: the other three data files
// (licence lines only; the corpus reads all four), a synset per noun quoting one of its
// sentences again under another lemma, and n synsets of each wordnet_topic class.
#include <filesystem>
#include <fstream>
#include <string>

#include "experiments/tasks/wordnet_topic.h"

namespace sp::testing {

struct FakeWordnetExtras {
  bool all_data_files = false;
  bool sentences_quoted_twice = false;
  bool topic_classes = false;
};

inline std::string write_fake_wordnet(const std::filesystem::path& dir, int n,
                                      const FakeWordnetExtras& extras = {}) {
  std::filesystem::create_directories(dir);
  const char* licence = "  1 This software and database is provided \"as is\" (a licence line)\n";
  if (extras.all_data_files)
    for (const char* f : {"data.adj", "data.adv", "data.verb"}) std::ofstream(dir / f) << licence;
  std::ofstream data(dir / "data.noun"), index(dir / "index.noun");
  data << licence;
  index << "  1 licence line\n";
  int64_t offset = 1000;
  for (int i = 0; i < n; ++i) {
    const std::string w = "word" + std::to_string(i);
    const int64_t a = offset++, b = offset++;
    data << a << " 03 n 01 " << w << " 0 000 | sense A of " << w << "; \"the " << w
         << " sat still\"; \"a red " << w << "\"\n";
    data << b << " 03 n 01 " << w << " 0 000 | sense B; \"two " << w << "s ran\"; \"no " << w
         << " here\"\n";
    index << w << " n 2 0 2 0 " << a << " " << b << "\n";
    if (extras.sentences_quoted_twice)
      data << offset++ << " 03 n 01 copy" << i << " 0 000 | a copy; \"the " << w
           << " sat still\"\n";
  }
  data << offset << " 03 n 01 lonely 0 000 | alone; \"a lonely lonely day\"; \"lonely me\"\n";
  index << "lonely n 1 0 1 0 " << offset++ << "\n";
  if (extras.topic_classes)
    for (const TopicClass& c : wordnet_topic_classes())
      for (int i = 0; i < n; ++i)
        data << offset++ << " " << (c.lex_filenum < 10 ? "0" : "") << c.lex_filenum << " n 01 "
             << c.label << "_thing" << i << " 0 000 | a " << c.label << " of kind " << i << "\n";
  return dir.string();
}

}  // namespace sp::testing
