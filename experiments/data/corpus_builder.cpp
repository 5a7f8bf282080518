#include "experiments/data/corpus_builder.h"

#include <sentencepiece_processor.h>

#include <array>
#include <cstring>
#include <filesystem>
#include <unordered_set>

#include "experiments/data/sha256.h"
#include "models/io/atomic_file.h"
#include "models/tokenizer/train_vocab.h"
#include "tensor/error.h"

namespace sp {
namespace fs = std::filesystem;

namespace {
// How a WordNet data file is named among a corpus's sources ("wordnet:<path>").
const std::string kWordnetSourcePrefix = "wordnet:";
}  // namespace

bool in_validation_split(std::string_view text, uint64_t seed, double fraction) {
  if (fraction <= 0) return false;
  if (fraction >= 1) return true;
  Sha256 h;
  h.update(std::to_string(seed) + ":");
  h.update(text);
  const std::array<uint8_t, 32> d = h.finish();
  uint64_t x = 0;
  for (int i = 0; i < 8; ++i) x = (x << 8) | d[i];
  // x / 2^64 < fraction, without rounding x through a double near the edge.
  return static_cast<long double>(x) < static_cast<long double>(fraction) * 18446744073709551616.0L;
}

nlohmann::json CorpusSummary::to_json(const CorpusBuildOptions& o) const {
  nlohmann::json sources_json = nlohmann::json::array();
  for (const CorpusSource& s : sources) {
    nlohmann::json j = {{"name", s.name}, {"sha256", s.sha256}, {"documents", s.documents}};
    if (!o.wordnet_exclusion_name.empty() && s.name.starts_with(kWordnetSourcePrefix)) {
      j["excluded_synsets"] = s.excluded_synsets;
      j["excluded_sentences"] = s.excluded_sentences;
    }
    sources_json.push_back(j);
  }
  return {
      {"format", "softprompt-corpus-1"},
      {"sources", sources_json},
      {"documents_read", documents_read},
      {"max_documents", o.max_documents},
      {"empty_documents", empty_documents},
      {"duplicates_removed", duplicates},
      {"splits",
       {{"train",
         {{"file", "train.txt"},
          {"documents", train_documents},
          {"bytes", train_bytes},
          {"sha256", train_sha256}}},
        {"validation",
         {{"file", "validation.txt"},
          {"documents", validation_documents},
          {"bytes", validation_bytes},
          {"sha256", validation_sha256}}}}},
      {"split",
       {{"method", "sha256(seed:text) < fraction"},
        {"seed", o.seed},
        {"validation_fraction", o.validation_fraction}}},
      {"vocabulary", o.train_vocabulary
                         ? nlohmann::json{{"file", "spiece.model"},
                                          {"model_type", "unigram"},
                                          {"requested_size", o.vocab_size},
                                          {"pieces", vocab_pieces},
                                          {"threads", o.vocab_threads},
                                          {"input_sentence_size", o.input_sentence_size},
                                          {"sha256", vocab_sha256},
                                          {"trained_on", "train.txt"}}
                         : nlohmann::json(nullptr)},
      {"text_format", document_format_name(o.text_format.format)},
      {"wordnet_excludes", o.wordnet_exclusion_name.empty()
                               ? nlohmann::json(nullptr)
                               : nlohmann::json(o.wordnet_exclusion_name)},
  };
}

namespace {

// Streams lines into an atomic file while hashing them.
struct SplitWriter {
  SplitWriter(const std::string& path) : file(path, "[corpus]") {}
  void add(const std::string& doc) {
    file.write(doc);
    file.write("\n");
    hash.update(doc);
    hash.update("\n");
    ++documents;
    bytes += static_cast<int64_t>(doc.size()) + 1;
  }
  AtomicFile file;
  Sha256 hash;
  int64_t documents = 0;
  int64_t bytes = 0;
};

// A document's identity for deduplication: 128 bits of its SHA-256, so the documents seen
// cost 16 bytes each in memory, not their text (C4 has hundreds of millions).
struct DocumentDigest {
  uint64_t a = 0, b = 0;
  bool operator==(const DocumentDigest&) const = default;
};
struct DocumentDigestHash {
  size_t operator()(const DocumentDigest& d) const { return static_cast<size_t>(d.a ^ (d.b >> 7)); }
};

DocumentDigest digest_of(const std::string& doc) {
  Sha256 h;
  h.update(doc);
  const std::array<uint8_t, 32> full = h.finish();
  DocumentDigest d;
  std::memcpy(&d.a, full.data(), 8);
  std::memcpy(&d.b, full.data() + 8, 8);
  return d;
}

}  // namespace

CorpusSummary build_corpus(const CorpusBuildOptions& o) {
  SP_CHECK(!o.out_dir.empty(), "[corpus] no output directory given");
  SP_CHECK(o.validation_fraction >= 0 && o.validation_fraction < 1,
           "[corpus] validation_fraction must be in [0, 1), got ", o.validation_fraction);
  SP_CHECK(o.use_wordnet || !o.text_files.empty(),
           "[corpus] nothing to read: WordNet is off and no text files were given");
  SP_CHECK(!o.train_vocabulary || o.vocab_size >= 8, "[corpus] vocab_size must be at least 8, got ",
           o.vocab_size);
  for (const std::string& f : o.text_files)
    SP_CHECK(fs::is_regular_file(f), "[corpus] text file ", f, " does not exist");
  std::error_code ec;
  fs::create_directories(o.out_dir, ec);
  SP_CHECK(!ec, "[corpus] cannot create ", o.out_dir, ": ", ec.message());

  const CorpusFiles out{o.out_dir, (fs::path(o.out_dir) / "train.txt").string(),
                        (fs::path(o.out_dir) / "validation.txt").string(),
                        (fs::path(o.out_dir) / "spiece.model").string(),
                        (fs::path(o.out_dir) / "corpus.json").string()};
  CorpusSummary summary;
  SplitWriter train(out.train), validation(out.validation);
  std::unordered_set<DocumentDigest, DocumentDigestHash> seen;
  auto full = [&] { return o.max_documents > 0 && summary.documents_read >= o.max_documents; };
  auto add = [&](const std::string& raw) {
    if (full()) return;
    ++summary.documents_read;
    std::string doc = normalize_whitespace(raw);
    if (doc.empty()) {
      ++summary.empty_documents;
      return;
    }
    if (!seen.insert(digest_of(doc)).second) {
      ++summary.duplicates;
      return;
    }
    (in_validation_split(doc, o.seed, o.validation_fraction) ? validation : train).add(doc);
  };

  if (o.use_wordnet) {
    std::vector<WordnetFile> files;
    const std::vector<std::string> docs =
        read_wordnet_documents(o.wordnet_dir, &files, o.wordnet_exclusion);
    // The documents come file after file; each source counts those read before max_documents
    // (add reads none once it is reached).
    size_t next = 0;
    for (const WordnetFile& f : files) {
      const int64_t before = summary.documents_read;
      for (int64_t k = 0; k < f.documents; ++k) add(docs[next++]);
      summary.sources.push_back({kWordnetSourcePrefix + f.path, f.sha256,
                                 summary.documents_read - before, f.excluded_synsets,
                                 f.excluded_sentences});
    }
  }
  for (const std::string& path : o.text_files) {
    DocumentReader reader(path, o.text_format);
    int64_t n = 0;
    while (!full()) {
      const std::optional<std::string> doc = reader.next();
      if (!doc) break;
      add(*doc);
      ++n;
    }
    summary.sources.push_back({path, sha256_file_hex(path), n});
  }
  SP_CHECK(train.documents > 0, "[corpus] the train split is empty (", summary.documents_read,
           " documents read, ", validation.documents, " in validation)");
  summary.train_documents = train.documents;
  summary.validation_documents = validation.documents;
  summary.train_bytes = train.bytes;
  summary.validation_bytes = validation.bytes;
  summary.train_sha256 = train.hash.finish_hex();
  summary.validation_sha256 = validation.hash.finish_hex();
  // The splits replace an earlier build's: first the directory stops being a built corpus
  // (no manifest; no vocabulary when this build trains none), so that a failure from here on
  // cannot leave the new splits beside the old manifest and vocabulary.
  for (const std::string& stale : {out.manifest, o.train_vocabulary ? "" : out.spiece_model}) {
    if (stale.empty()) continue;
    fs::remove(stale, ec);
    SP_CHECK(!ec, "[corpus] cannot remove the earlier build's ", stale, ": ", ec.message());
  }
  train.file.commit();
  validation.file.commit();

  if (o.train_vocabulary) {
    VocabTrainingOptions v;
    v.vocab_size = o.vocab_size;
    v.num_threads = o.vocab_threads;
    v.hard_vocab_limit = false;  // a small corpus ends with fewer pieces instead of failing
    v.max_sentence_length = 1 << 16;
    v.input_sentence_size = o.input_sentence_size;
    v.verbose = o.verbose;
    train_vocab({out.train}, out.spiece_model, v);
    sentencepiece::SentencePieceProcessor model;
    SP_CHECK(model.Load(out.spiece_model).ok(), "[corpus] cannot load the trained ",
             out.spiece_model);
    summary.vocab_pieces = model.GetPieceSize();
    summary.vocab_sha256 = sha256_file_hex(out.spiece_model);
  }
  write_file_atomic(out.manifest, summary.to_json(o).dump(2) + "\n", "[corpus]");
  return summary;
}

CorpusFiles corpus_files(const std::string& dir) {
  const CorpusFiles f{
      dir, (fs::path(dir) / "train.txt").string(), (fs::path(dir) / "validation.txt").string(),
      (fs::path(dir) / "spiece.model").string(), (fs::path(dir) / "corpus.json").string()};
  for (const std::string* p : {&f.manifest, &f.train, &f.validation, &f.spiece_model})
    SP_CHECK(fs::is_regular_file(*p), "[corpus] ", dir, " is not a built corpus: ", *p,
             " is missing (make one with `softprompt data build-corpus --out ", dir, "`)");
  return f;
}

}  // namespace sp
