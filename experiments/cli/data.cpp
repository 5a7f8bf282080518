// `softprompt data build-corpus`: the built-in pretraining corpus (WordNet's glosses and
// examples plus optional text files) with its SentencePiece vocabulary
// (experiments/data/corpus_builder.h).
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <string>

#include "experiments/cli/command.h"
#include "experiments/data/corpus_builder.h"
#include "experiments/tasks/wordnet_held_out.h"
#include "tensor/error.h"

namespace sp::cli {
namespace {

struct DataOptions {
  CorpusBuildOptions build;
  std::string text_format = "lines";
  bool no_wordnet = false;
  bool no_vocab = false;
  bool keep_held_out = false;
  bool overwrite = false;
};

int run_build_corpus(DataOptions& o) {
  o.build.use_wordnet = !o.no_wordnet;
  if (o.build.use_wordnet && !o.keep_held_out) {
    o.build.wordnet_exclusion = wordnet_tasks_held_out();
    o.build.wordnet_exclusion_name = kWordnetTasksHeldOut;
  }
  o.build.train_vocabulary = !o.no_vocab;
  o.build.text_format.format = parse_document_format(o.text_format);
  if (!o.overwrite &&
      std::filesystem::exists(std::filesystem::path(o.build.out_dir) / "corpus.json"))
    throw UsageError(str_cat("[build-corpus] ", o.build.out_dir,
                             " already holds a corpus (corpus.json): give another --out, or "
                             "--overwrite to replace it"));
  std::cerr << "build-corpus: reading the documents"
            << (o.build.train_vocabulary
                    ? str_cat(" and training a ", o.build.vocab_size, "-piece spiece.model")
                    : "")
            << " into " << o.build.out_dir << " ...\n";
  const CorpusSummary s = build_corpus(o.build);
  std::cerr << "build-corpus: " << s.documents_read << " documents read, " << s.duplicates
            << " duplicates and " << s.empty_documents << " empty removed; train "
            << s.train_documents << " (" << s.train_bytes << " bytes), validation "
            << s.validation_documents << " (" << s.validation_bytes << " bytes)";
  if (o.build.train_vocabulary) std::cerr << "; spiece.model with " << s.vocab_pieces << " pieces";
  std::cerr << "\n";
  std::cout << s.to_json(o.build).dump(2) << "\n";
  return 0;
}

std::function<int()> setup_data(CLI::App& sub) {
  auto o = std::make_shared<DataOptions>();
  sub.require_subcommand(1);
  CLI::App* build = sub.add_subcommand(
      "build-corpus",
      "Build the pretraining corpus: WordNet glosses and examples (Debian's wordnet-base) and "
      "optional text files, whitespace-normalised, deduplicated, split into train.txt / "
      "validation.txt by a hash of each document, with spiece.model and corpus.json");
  build->add_option("--out", o->build.out_dir, "Output directory")->required();
  build->add_option("--text", o->build.text_files, "Extra text files (repeatable)");
  build->add_option("--text-format", o->text_format,
                    "How the text files hold documents: lines, paragraphs or jsonl")
      ->capture_default_str();
  build->add_option("--jsonl-field", o->build.text_format.jsonl_field,
                    "The field of a jsonl line that holds the text")
      ->capture_default_str();
  build->add_option("--wordnet-dir", o->build.wordnet_dir, "WordNet database directory")
      ->capture_default_str();
  build->add_flag("--no-wordnet", o->no_wordnet, "Use only the --text files");
  build->add_flag("--keep-held-out", o->keep_held_out,
                  "Keep the built-in WordNet tasks' validation and test text (left out by "
                  "default, as `softprompt run` does, so that a model pretrained on the corpus "
                  "has not seen them)");
  build->add_option("--vocab-size", o->build.vocab_size,
                    "SentencePiece pieces (a small corpus may end with fewer)")
      ->check(CLI::Range(int64_t{8}, int64_t{1} << 20))
      ->capture_default_str();
  build->add_flag("--no-vocab", o->no_vocab, "Skip training spiece.model");
  build
      ->add_option("--vocab-threads", o->build.vocab_threads,
                   "SentencePiece training threads (part of the recipe: the result depends on it)")
      ->check(positive())
      ->capture_default_str();
  build->add_option("--validation-fraction", o->build.validation_fraction,
                    "Share of documents in validation")
      ->check(CLI::Range(0.0, 0.99))
      ->capture_default_str();
  build->add_option("--seed", o->build.seed, "Seed of the train/validation split hash")
      ->capture_default_str();
  build->add_flag("--verbose", o->build.verbose, "SentencePiece's training log");
  build->add_flag("--overwrite", o->overwrite, "Replace a corpus that --out already holds");
  return [o, build] {
    if (build->parsed()) return run_build_corpus(*o);
    return 1;
  };
}

}  // namespace

SP_REGISTER_COMMAND(data, "Data tools: build-corpus (the built-in pretraining corpus)", setup_data);

}  // namespace sp::cli
