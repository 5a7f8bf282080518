#include "experiments/tasks/wordnet_held_out.h"

#include <algorithm>
#include <set>
#include <utility>

#include "experiments/tasks/wordnet_task_data.h"
#include "experiments/tasks/wordnet_topic.h"
#include "experiments/tasks/wordnet_wic.h"
#include "tensor/suggest.h"

namespace sp {
namespace {

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// 1 in 10 to test, 1 in 10 to validation, the rest to train.
WordnetSplit split_of_hash(uint64_t key) {
  SplitMix h{key};
  const uint64_t bucket = h.next() % 10;
  return bucket == 0   ? WordnetSplit::test
         : bucket == 1 ? WordnetSplit::validation
                       : WordnetSplit::train;
}

// A data file's lemma ("Take off") as index files write it ("take_off").
std::string index_form(std::string lemma) {
  std::replace(lemma.begin(), lemma.end(), ' ', '_');
  return ascii_lowercase(std::move(lemma));
}

}  // namespace

WordnetSplit wordnet_wic_split(const std::string& lemma) { return split_of_hash(fnv1a(lemma)); }

WordnetSplit wordnet_topic_split(int64_t offset) {
  return split_of_hash(static_cast<uint64_t>(offset));
}

WordnetExclusion wordnet_tasks_held_out() {
  std::set<int> topic_files;
  for (const TopicClass& c : wordnet_topic_classes()) topic_files.insert(c.lex_filenum);
  WordnetExclusion e;
  e.synset = [topic_files](const WordnetSynset& s) {
    return s.pos == 'n' && topic_files.count(s.lex_filenum) > 0 &&
           wordnet_topic_split(s.offset) != WordnetSplit::train;
  };
  e.sentence = [](const WordnetSynset& s, const std::string& sentence) {
    return std::any_of(s.lemmas.begin(), s.lemmas.end(), [&](const std::string& lemma) {
      const std::string key = index_form(lemma);
      return wordnet_wic_split(key) != WordnetSplit::train && find_lemma(sentence, key).first >= 0;
    });
  };
  return e;
}

}  // namespace sp
