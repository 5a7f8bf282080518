// Tokenization: what pretraining does to its whole corpus before the first step
// (tokenize_file, once per pretrain or lm_adapt stage) and what a task does to every
// example. The figure is MB/s of UTF-8 text in, read beside raw SentencePiece on the same
// text and vocabulary from the same run (--benchmark_filter=tokenize):
//   tokenize/sentencepiece_raw   SentencePieceProcessor::Encode, one thread: the reference
//   tokenize/t5_encode           T5Tokenizer::encode, one thread: seqio's sentinel and
//                                whitespace handling around the same Encode
//   tokenize/documents_parallel  tokenize_documents, all OpenMP threads: the pretraining path
//                                (its ratio to t5_encode is the parallel speed-up)
// Text: BoolQ's validation passages when SP_SUPERGLUE_DIR names a SuperGLUE folder
// (Wikipedia prose, closest to C4), else the built-in corpus's documents (WordNet glosses,
// /usr/share/wordnet). Vocabulary: a unigram model of 8000 pieces trained on that text at
// start-up, as the quickstart trains its own.
#include <benchmark/benchmark.h>
#include <omp.h>
#include <sentencepiece_processor.h>

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "experiments/data/document_reader.h"
#include "experiments/data/tokenized_documents.h"
#include "experiments/data/wordnet.h"
#include "models/tokenizer/t5_tokenizer.h"
#include "models/tokenizer/train_vocab.h"

namespace sp {
namespace {

namespace fs = std::filesystem;

struct TokenizerBenchData {
  std::string source;  // what the text is, for the label
  std::vector<std::string> documents;
  int64_t bytes = 0;
  std::string spiece_model;  // path of the trained vocabulary
  std::string error;         // why there is no data, if there is none
};

std::vector<std::string> boolq_passages(const std::string& superglue_dir) {
  DocumentReaderOptions options;
  options.format = DocumentFormat::jsonl;
  options.jsonl_field = "passage";
  DocumentReader reader((fs::path(superglue_dir) / "BoolQ" / "val.jsonl").string(), options);
  std::vector<std::string> passages;
  while (std::optional<std::string> passage = reader.next()) passages.push_back(*passage);
  return passages;
}

TokenizerBenchData make_data() {
  TokenizerBenchData d;
  try {
    if (const char* superglue = std::getenv("SP_SUPERGLUE_DIR")) {
      d.documents = boolq_passages(superglue);
      d.source = "BoolQ val passages";
    } else {
      d.documents = read_wordnet_documents(kDefaultWordnetDir, nullptr);
      d.source = "WordNet documents";
    }
    for (const std::string& doc : d.documents) d.bytes += static_cast<int64_t>(doc.size());
    d.spiece_model = (fs::temp_directory_path() / "sp_tokenizer_bench_spiece.model").string();
    VocabTrainingOptions vocab;
    vocab.vocab_size = 8000;
    vocab.hard_vocab_limit = false;
    vocab.input_sentence_size = 200000;
    vocab.num_threads = omp_get_max_threads();
    train_vocab_from_sentences(d.documents, d.spiece_model, vocab);
  } catch (const std::exception& e) {
    d.error = e.what();
  }
  return d;
}

const TokenizerBenchData& data() {
  static const TokenizerBenchData d = make_data();
  return d;
}

// Sets the figure and label; false (and the benchmark skipped) when there is no data.
bool ready(benchmark::State& state, const TokenizerBenchData& d) {
  if (d.error.empty()) return true;
  state.SkipWithError(("no text to tokenize: " + d.error).c_str());
  return false;
}

void report(benchmark::State& state, const TokenizerBenchData& d, int64_t tokens) {
  state.counters["MBps"] = benchmark::Counter(static_cast<double>(d.bytes) * 1e-6,
                                              benchmark::Counter::kIsIterationInvariantRate);
  state.counters["tokens_per_byte"] =
      static_cast<double>(tokens) / static_cast<double>(std::max<int64_t>(d.bytes, 1));
  state.SetLabel(d.source + ", " + std::to_string(d.documents.size()) + " docs");
}

void sentencepiece_raw(benchmark::State& state) {
  const TokenizerBenchData& d = data();
  if (!ready(state, d)) return;
  sentencepiece::SentencePieceProcessor processor;
  if (!processor.Load(d.spiece_model).ok()) {
    state.SkipWithError(("cannot load " + d.spiece_model).c_str());
    return;
  }
  int64_t tokens = 0;
  std::vector<int> ids;
  for (auto _ : state) {
    tokens = 0;
    for (const std::string& doc : d.documents) {
      processor.Encode(doc, &ids).IgnoreError();
      tokens += static_cast<int64_t>(ids.size());
    }
    benchmark::DoNotOptimize(ids.data());
  }
  report(state, d, tokens);
}

void t5_encode(benchmark::State& state) {
  const TokenizerBenchData& d = data();
  if (!ready(state, d)) return;
  const T5Tokenizer tokenizer = T5Tokenizer::load(d.spiece_model);
  int64_t tokens = 0;
  for (auto _ : state) {
    tokens = 0;
    for (const std::string& doc : d.documents) {
      const std::vector<int64_t> ids = tokenizer.encode(doc, false);
      tokens += static_cast<int64_t>(ids.size());
      benchmark::DoNotOptimize(ids.data());
    }
  }
  report(state, d, tokens);
}

void documents_parallel(benchmark::State& state) {
  const TokenizerBenchData& d = data();
  if (!ready(state, d)) return;
  const T5Tokenizer tokenizer = T5Tokenizer::load(d.spiece_model);
  int64_t tokens = 0;
  for (auto _ : state) {
    const TokenizedDocuments docs = tokenize_documents(d.documents, tokenizer);
    tokens = docs.num_tokens();
    benchmark::DoNotOptimize(tokens);
  }
  report(state, d, tokens);
  state.counters["threads"] = omp_get_max_threads();
}

}  // namespace
}  // namespace sp

BENCHMARK(sp::sentencepiece_raw)
    ->Name("tokenize/sentencepiece_raw")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(sp::t5_encode)->Name("tokenize/t5_encode")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(sp::documents_parallel)
    ->Name("tokenize/documents_parallel")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
