#pragma once
// T5Tokenizer: a SentencePiece unigram model (spiece.model) with T5's conventions.
//
// Ids: pad = 0, eos = 1 (appended by encode), unk = 2, no bos; the spm_size() pieces of the
// model, then extra_ids sentinels <extra_id_N> = spm_size + extra_ids - 1 - N (32099 for
// N = 0 with T5's 32000 pieces). vocab_size() = spm_size + extra_ids (32100); a T5
// embedding has more rows (32128): ids at or above vocab_size() have no text.
//
// Encoding follows seqio (what T5 was trained with), which adds "▁<extra_id_N>" to the
// SentencePiece model as user-defined pieces: a sentinel is one id, and the text after it
// starts a new word only if whitespace follows the sentinel ("<extra_id_0>. x" gives ".",
// "<extra_id_0> cat" gives "▁cat"). Like transformers' T5Tokenizer(legacy=False) we also
// find sentinels that do not follow whitespace ("the<extra_id_0>cat"), where seqio would
// spell them out, and read "▁" in the text as a space (so a "▁" right before a sentinel is
// part of it, where seqio keeps a "▁" piece). The other SentinelSpacing modes give
// transformers' ids instead:
//  * strip: transformers 4's slow (SentencePiece) T5Tokenizer(legacy=False), whose sentinels
//    strip the whitespace around them ("<extra_id_0> cat" gives "c", "at");
//  * word_start: transformers 5's T5Tokenizer (the tokenizers library, Metaspace with
//    prepend_scheme="always"), where each text segment after a sentinel starts a word
//    ("<extra_id_0>." gives "▁", "."; "the<extra_id_0>cat" gives "▁ca", "t"); ids can still
//    differ where tokenizers' Unigram breaks a Viterbi tie unlike libsentencepiece ("000").
// "</s>", "<pad>" and "<unk>" written in the text stay text in every mode (transformers would
// turn them into special ids). Decoding follows transformers 4's decode() in the seqio and
// strip modes, and transformers 5's (tokenizers' Metaspace decoder) in word_start mode.
//
// All methods are const and thread-safe; copies share the loaded model.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tensor/dtype.h"
#include "tensor/tensor.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace sp {

enum class SentinelSpacing {
  seqio,  // whitespace after a sentinel becomes "▁" on the next word (T5 / seqio)
  strip,  // whitespace around sentinels is dropped (transformers 4's slow
          // T5Tokenizer(legacy=False) defaults)
  // transformers 5: each text segment after a sentinel starts a word, as tokenizers'
  // Metaspace(prepend_scheme="always") ("x <extra_id_0>y" ends as "x <extra_id_0> y" does;
  // "<extra_id_0>." gives "<extra_id_0>", "▁", "."). decode() follows
  // transformers 5 too: no spaces around sentinels, "▁" is a space in every piece but the
  // first, and nothing is trimmed ("<extra_id_0>", "▁the" gives "<extra_id_0> the"; "▁the",
  // "<extra_id_0>", "s" gives "the<extra_id_0>s").
  word_start,
};

struct T5TokenizerOptions {
  int64_t extra_ids = 100;  // number of <extra_id_N> sentinels
  SentinelSpacing sentinel_spacing = SentinelSpacing::seqio;
};

struct DecodeOptions {
  // transformers' skip_special_tokens: drops pad, eos, unk and the sentinels (and ids at or
  // above vocab_size(), which have no text).
  bool skip_special_tokens = true;
  // With skip_special_tokens: keeps the sentinels (span-corruption targets stay readable).
  bool keep_sentinels = false;
  // With skip_special_tokens: keeps unk, and reads ids at or above vocab_size() as unk, as
  // seqio decodes a prediction (so "True <unk>" is not the label "True").
  bool keep_unknown = false;
  // Drops the first eos and everything after it (generated sequences).
  bool stop_at_eos = false;
};

enum class Padding {
  none,        // rows keep their lengths (BatchEncoding::length is the longest)
  longest,     // pad to the longest row
  max_length,  // pad every row to max_length
};

struct BatchOptions {
  bool add_eos = true;
  Padding padding = Padding::longest;
  // Truncation and Padding::max_length use it; 0 means no limit.
  int64_t max_length = 0;
  // Cut rows longer than max_length, keeping eos last (as transformers does); without
  // truncation a row longer than max_length is an error.
  bool truncation = false;
  int64_t pad_to_multiple_of = 0;  // round the padded length up (0: no rounding)
};

// Rows of ids, right-padded with pad (0); mask 1 on tokens (eos included), 0 on padding.
struct BatchEncoding {
  int64_t batch = 0;
  int64_t length = 0;                   // padded row length
  std::vector<int64_t> input_ids;       // [batch, length], row-major
  std::vector<int64_t> attention_mask;  // [batch, length]
  std::vector<int64_t> lengths;         // [batch]: tokens per row before padding

  // Row i without its padding.
  std::vector<int64_t> row(int64_t i) const;
  // ids: [batch, length] as i64 or i32.
  Tensor input_ids_tensor(DType dtype = DType::i64) const;
  // mask: [batch, length] as i64, i32, boolean or a float dtype.
  Tensor attention_mask_tensor(DType dtype = DType::i64) const;
};

class T5Tokenizer {
 public:
  static constexpr int64_t kPadId = 0;
  static constexpr int64_t kEosId = 1;
  static constexpr int64_t kUnkId = 2;

  // Loads spiece.model; throws sp::Error naming the file when it is missing, unreadable,
  // not a SentencePiece model, or does not use T5's pad/eos/unk ids.
  static T5Tokenizer load(const std::string& path, const T5TokenizerOptions& options = {});
  // The same from the bytes of a model file (name only labels error messages).
  static T5Tokenizer from_serialized(std::string_view model_bytes, const std::string& name,
                                     const T5TokenizerOptions& options = {});

  // text -> ids, with eos appended unless add_eos is false.
  std::vector<int64_t> encode(std::string_view text, bool add_eos = true) const;
  // The same cut to at most max_length ids (0: no limit), keeping eos last when add_eos is
  // set, as transformers' truncation does.
  std::vector<int64_t> encode(std::string_view text, bool add_eos, int64_t max_length) const;
  // The pieces of encode(text, add_eos) (sentinels as "<extra_id_N>").
  std::vector<std::string> tokenize(std::string_view text, bool add_eos = false) const;
  std::string decode(std::span<const int64_t> ids, const DecodeOptions& options = {}) const;

  BatchEncoding encode_batch(const std::vector<std::string>& texts,
                             const BatchOptions& options = {}) const;
  // ids: [batch, length] (i64 or i32) -> one string per row.
  std::vector<std::string> decode_batch(const Tensor& ids, const DecodeOptions& options = {}) const;

  int64_t pad_id() const { return kPadId; }
  int64_t eos_id() const { return kEosId; }
  int64_t unk_id() const { return kUnkId; }
  int64_t spm_size() const { return spm_size_; }
  int64_t extra_ids() const { return extra_ids_; }
  int64_t vocab_size() const { return spm_size_ + extra_ids_; }
  const std::string& name() const { return name_; }
  SentinelSpacing sentinel_spacing() const { return spacing_; }

  // Throws when this tokenizer's ids reach past an embedding of model_vocab rows (a
  // spiece.model from another checkpoint, or too many extra_ids); model names the model.
  void check_fits(int64_t model_vocab, const std::string& model) const;

  // <extra_id_n>'s id; n in [0, extra_ids).
  int64_t sentinel_id(int64_t n) const;
  bool is_sentinel(int64_t id) const { return id >= spm_size_ && id < vocab_size(); }
  // pad, eos, unk or a sentinel.
  bool is_special(int64_t id) const {
    return id == kPadId || id == kEosId || id == kUnkId || is_sentinel(id);
  }
  // A piece of the model or "<extra_id_N>"; throws for ids outside [0, vocab_size()).
  std::string id_to_piece(int64_t id) const;
  // The id of a piece or sentinel string; unk_id() for anything else.
  int64_t piece_to_id(std::string_view piece) const;

 private:
  T5Tokenizer() = default;
  // One segment of text between sentinels -> ids, as transformers' T5Tokenizer._tokenize.
  void encode_segment(std::string_view segment, std::vector<int64_t>& out) const;
  // transformers' convert_tokens_to_string: ids without sentinels -> text.
  std::string decode_run(std::span<const int64_t> ids) const;

  // transformers 5's decode (SentinelSpacing::word_start).
  std::string decode_word_start(std::span<const int64_t> ids) const;

  // Decodes with the model as it is (add_dummy_prefix on); encodes with add_dummy_prefix
  // off, as transformers' legacy=False tokenizer, so that text after a sentinel does not
  // start a word by itself. word_start mode encodes with word_: add_dummy_prefix and
  // remove_extra_whitespaces on, whatever the model says (transformers 5 always prepends
  // "▁" and splits on whitespace).
  std::shared_ptr<const sentencepiece::SentencePieceProcessor> model_;
  std::shared_ptr<const sentencepiece::SentencePieceProcessor> raw_;
  std::shared_ptr<const sentencepiece::SentencePieceProcessor> word_;  // word_start only
  std::string name_;
  int64_t spm_size_ = 0;
  int64_t extra_ids_ = 0;
  SentinelSpacing spacing_ = SentinelSpacing::seqio;
  int64_t space_piece_id_ = -1;  // "▁", or -1
};

}  // namespace sp
