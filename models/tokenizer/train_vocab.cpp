#include "models/tokenizer/train_vocab.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cerrno>
#include <fstream>
#include <limits>
#include <mutex>
#include <sstream>
#include <system_error>
#include <unordered_map>

#include "models/io/atomic_file.h"
#include "tensor/error.h"

namespace sp {
namespace {

namespace spm = sentencepiece;

constexpr const char* kTag = "[train_vocab]";
constexpr unsigned int kGeneratorSeed = 12345678;

// Lines of several files in order, empty ones skipped, "\r\n" endings accepted.
class FileSentences : public spm::SentenceIterator {
 public:
  explicit FileSentences(const std::vector<std::string>& files) : files_(files) { advance(); }
  bool done() const override { return done_; }
  void Next() override { advance(); }
  const std::string& value() const override { return line_; }
  spm::util::Status status() const override { return status_; }

 private:
  void advance() {
    while (!done_) {
      if (!in_.is_open()) {
        if (next_file_ == files_.size()) {
          done_ = true;
          return;
        }
        in_.open(files_[next_file_], std::ios::binary);
        if (!in_) {
          // Checked before training; a file that vanished since then ends the corpus.
          status_ = spm::util::Status(spm::util::StatusCode::kNotFound,
                                      "cannot open " + files_[next_file_]);
          done_ = true;
          return;
        }
        ++next_file_;
      }
      if (std::getline(in_, line_)) {
        if (!line_.empty() && line_.back() == '\r') line_.pop_back();
        if (line_.empty()) continue;
        return;
      }
      in_.close();
    }
  }

  const std::vector<std::string>& files_;
  size_t next_file_ = 0;
  std::ifstream in_;
  std::string line_;
  bool done_ = false;
  spm::util::Status status_;
};

class MemorySentences : public spm::SentenceIterator {
 public:
  explicit MemorySentences(const std::vector<std::string>& sentences) : sentences_(sentences) {
    skip_empty();
  }
  bool done() const override { return next_ >= sentences_.size(); }
  void Next() override {
    ++next_;
    skip_empty();
  }
  const std::string& value() const override { return sentences_[next_]; }
  spm::util::Status status() const override { return {}; }

 private:
  void skip_empty() {
    while (next_ < sentences_.size() && sentences_[next_].empty()) ++next_;
  }
  const std::vector<std::string>& sentences_;
  size_t next_ = 0;
};

std::string number(double v) {
  std::ostringstream os;
  os.precision(std::numeric_limits<double>::max_digits10);
  os << v;
  return os.str();
}

void check_options(const VocabTrainingOptions& o) {
  SP_CHECK(o.vocab_size > 3, kTag, " vocab_size must exceed the 3 special pieces, got ",
           o.vocab_size);
  SP_CHECK(o.character_coverage > 0.0 && o.character_coverage <= 1.0, kTag,
           " character_coverage must be in (0, 1], got ", o.character_coverage);
  SP_CHECK(o.input_sentence_size >= 0, kTag, " input_sentence_size must be >= 0, got ",
           o.input_sentence_size);
  SP_CHECK(o.max_sentence_length > 0, kTag, " max_sentence_length must be > 0, got ",
           o.max_sentence_length);
  SP_CHECK(o.num_threads >= 1 && o.num_threads <= 128, kTag,
           " num_threads must be in [1, 128], got ", o.num_threads);
}

std::unordered_map<std::string, std::string> trainer_args(const VocabTrainingOptions& o) {
  return {
      {"model_type", o.model_type},
      {"vocab_size", std::to_string(o.vocab_size)},
      {"character_coverage", number(o.character_coverage)},
      {"input_sentence_size", std::to_string(o.input_sentence_size)},
      {"shuffle_input_sentence", o.shuffle_input_sentence ? "true" : "false"},
      {"max_sentence_length", std::to_string(o.max_sentence_length)},
      {"num_threads", std::to_string(o.num_threads)},
      {"normalization_rule_name", o.normalization_rule_name},
      {"split_digits", o.split_digits ? "true" : "false"},
      {"hard_vocab_limit", o.hard_vocab_limit ? "true" : "false"},
      {"byte_fallback", "false"},
      {"pad_id", "0"},
      {"eos_id", "1"},
      {"unk_id", "2"},
      {"bos_id", "-1"},
      {"pad_piece", "<pad>"},
      {"eos_piece", "</s>"},
      {"unk_piece", "<unk>"},
      {"minloglevel", o.verbose ? "0" : "2"},
  };
}

// SentencePiece's random generator and log level are process-wide.
std::mutex& training_mutex() {
  static std::mutex m;
  return m;
}

void train(spm::SentenceIterator& sentences, const std::string& model_path,
           const VocabTrainingOptions& options) {
  std::string model;
  {
    std::lock_guard<std::mutex> lock(training_mutex());
    // The global generator seeds itself from std::random_device unless pinned; 0.1.97's
    // trainer samples with its own fixed seed, but a library that drew from the global one
    // would otherwise make training irreproducible.
    spm::SetRandomGeneratorSeed(kGeneratorSeed);
    const auto status = spm::SentencePieceTrainer::Train(trainer_args(options), &sentences, &model);
    SP_CHECK(status.ok(), kTag, " SentencePiece training for ", model_path,
             " failed: ", status.ToString());
  }
  AtomicFile out(model_path, kTag);
  out.write(model);
  out.commit();
}

}  // namespace

void train_vocab(const std::vector<std::string>& input_files, const std::string& model_path,
                 const VocabTrainingOptions& options) {
  check_options(options);
  SP_CHECK(!input_files.empty(), kTag, " no input files");
  for (const auto& file : input_files) {
    std::ifstream probe(file, std::ios::binary);
    if (!probe) {
      const std::string reason = std::system_category().message(errno);
      fail(str_cat(kTag, " cannot open input file '", file, "': ", reason));
    }
  }
  FileSentences sentences(input_files);
  SP_CHECK(!(sentences.done() && sentences.status().ok()), kTag, " the input files hold no text");
  train(sentences, model_path, options);
}

void train_vocab_from_sentences(const std::vector<std::string>& sentences,
                                const std::string& model_path,
                                const VocabTrainingOptions& options) {
  check_options(options);
  MemorySentences it(sentences);
  SP_CHECK(!it.done(), kTag, " no text: all ", sentences.size(), " sentences are empty");
  train(it, model_path, options);
}

}  // namespace sp
