#include "models/tokenizer/t5_tokenizer.h"

#include <sentencepiece_processor.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "models/tokenizer/charsmap_check.h"
#include "models/tokenizer/utf8.h"
#include "tensor/error.h"

namespace sp {
namespace {

namespace spm = sentencepiece;

constexpr std::string_view kSentinelPrefix = "<extra_id_";
constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81";  // "▁", U+2581

// Appended to a serialized ModelProto: a second normalizer_spec (field 3) holding only
// add_dummy_prefix (field 3) = false. Protobuf merges repeated occurrences of a message
// field, so this overrides that one flag, as transformers' NormalizerSpec.MergeFrom does.
constexpr char kNoDummyPrefix[] = {0x1A, 0x02, 0x18, 0x00};
// The same with add_dummy_prefix (field 3) = true and remove_extra_whitespaces (field 4) =
// true: what transformers 5 does whatever the model says (Metaspace prepends "▁" to every
// word, WhitespaceSplit drops runs of whitespace).
constexpr char kWordStart[] = {0x1A, 0x04, 0x18, 0x01, 0x20, 0x01};
constexpr std::string_view kNextLine = "\xC2\x85";  // U+0085 (NEL)

// A sentinel "<extra_id_N>" (N written without leading zeros, N < extra_ids) starting at
// s[pos]: its length, and N in *n; 0 when there is none.
size_t match_sentinel(std::string_view s, size_t pos, int64_t extra_ids, int64_t* n) {
  if (s.substr(pos, kSentinelPrefix.size()) != kSentinelPrefix) return 0;
  size_t i = pos + kSentinelPrefix.size();
  const size_t digits_begin = i;
  int64_t value = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9' && i - digits_begin < 18) {
    value = value * 10 + (s[i] - '0');
    ++i;
  }
  const size_t digits = i - digits_begin;
  if (digits == 0 || (digits > 1 && s[digits_begin] == '0')) return 0;
  if (i >= s.size() || s[i] != '>') return 0;
  if (value >= extra_ids) return 0;
  *n = value;
  return i + 1 - pos;
}

void check_status(const spm::util::Status& status, const std::string& what) {
  SP_CHECK(status.ok(), "[tokenizer] ", what, ": ", status.ToString());
}

// The model with normaliser fields overridden: serialized NormalizerSpec bytes appended to
// the model's (protobuf merges them into its own). what names the variant in errors.
std::shared_ptr<const spm::SentencePieceProcessor> load_overridden(std::string_view model_bytes,
                                                                   std::string_view override,
                                                                   const std::string& what) {
  std::string bytes(model_bytes);
  bytes.append(override);
  auto model = std::make_shared<spm::SentencePieceProcessor>();
  check_status(model->LoadFromSerializedProto(bytes), what);
  return model;
}

}  // namespace

// --- loading ------------------------------------------------------------------------------

T5Tokenizer T5Tokenizer::load(const std::string& path, const T5TokenizerOptions& options) {
  std::error_code ec;
  SP_CHECK(!std::filesystem::is_directory(path, ec),
           "[tokenizer] cannot open SentencePiece model '", path,
           "': it is a directory (the model is the spiece.model file in it)");
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const std::string reason = std::system_category().message(errno);
    fail(str_cat("[tokenizer] cannot open SentencePiece model '", path, "': ", reason));
  }
  std::ostringstream bytes;
  bytes << in.rdbuf();
  SP_CHECK(!in.bad(), "[tokenizer] cannot read SentencePiece model '", path, "'");
  return from_serialized(bytes.str(), path, options);
}

void T5Tokenizer::check_fits(int64_t model_vocab, const std::string& model) const {
  SP_CHECK(vocab_size() <= model_vocab, "[tokenizer] '", name_, "' has ", vocab_size(), " ids (",
           spm_size_, " pieces + ", extra_ids_, " sentinels) but the model ", model,
           " has vocab_size ", model_vocab,
           ": its ids would index past the embedding (use the checkpoint's own spiece.model)");
}

T5Tokenizer T5Tokenizer::from_serialized(std::string_view model_bytes, const std::string& name,
                                         const T5TokenizerOptions& options) {
  SP_CHECK(options.extra_ids >= 0, "[tokenizer] extra_ids must be >= 0, got ", options.extra_ids);
  SP_CHECK(!model_bytes.empty(), "[tokenizer] '", name, "' is empty, not a SentencePiece model");
  auto model = std::make_shared<spm::SentencePieceProcessor>();
  const auto status = model->LoadFromSerializedProto(model_bytes);
  SP_CHECK(status.ok(), "[tokenizer] '", name,
           "' is not a valid SentencePiece model: ", status.ToString());
  SP_CHECK(model->pad_id() == kPadId && model->eos_id() == kEosId && model->unk_id() == kUnkId,
           "[tokenizer] '", name,
           "' does not use T5's special ids (pad=0, eos=1, unk=2): it has pad=", model->pad_id(),
           ", eos=", model->eos_id(), ", unk=", model->unk_id());
  check_precompiled_charsmaps(model_bytes, name);

  auto raw = load_overridden(model_bytes, {kNoDummyPrefix, sizeof(kNoDummyPrefix)},
                             "'" + name + "' without a dummy prefix");

  T5Tokenizer tok;
  if (options.sentinel_spacing == SentinelSpacing::word_start)
    tok.word_ = load_overridden(model_bytes, {kWordStart, sizeof(kWordStart)},
                                "'" + name + "' with a dummy prefix");
  tok.name_ = name;
  tok.spm_size_ = model->GetPieceSize();
  tok.extra_ids_ = options.extra_ids;
  tok.spacing_ = options.sentinel_spacing;
  const int space_id = model->PieceToId(kSpaceSymbol);
  tok.space_piece_id_ = model->IsUnknown(space_id) ? -1 : space_id;
  tok.model_ = std::move(model);
  tok.raw_ = std::move(raw);
  return tok;
}

// --- pieces ---------------------------------------------------------------------------------

int64_t T5Tokenizer::sentinel_id(int64_t n) const {
  SP_CHECK(n >= 0 && n < extra_ids_, "[tokenizer] sentinel <extra_id_", n,
           "> does not exist: ", "there are ", extra_ids_, " extra ids");
  return vocab_size() - 1 - n;
}

std::string T5Tokenizer::id_to_piece(int64_t id) const {
  SP_CHECK(id >= 0 && id < vocab_size(), "[tokenizer] id ", id, " is outside the vocabulary [0, ",
           vocab_size(), ")");
  if (is_sentinel(id)) return str_cat(kSentinelPrefix, vocab_size() - 1 - id, ">");
  return model_->IdToPiece(static_cast<int>(id));
}

int64_t T5Tokenizer::piece_to_id(std::string_view piece) const {
  int64_t n = 0;
  if (match_sentinel(piece, 0, extra_ids_, &n) == piece.size() && !piece.empty())
    return sentinel_id(n);
  return model_->PieceToId(piece);
}

// --- encoding -------------------------------------------------------------------------------

void T5Tokenizer::encode_segment(std::string_view segment, std::vector<int64_t>& out) const {
  // SentencePiece drops leading whitespace (and, with add_dummy_prefix off, does not mark a
  // word start). transformers keeps a leading " " as "▁" by encoding "<unk>" + segment and
  // dropping the pieces of "<unk>"; seqio keeps any leading character its normaliser turns
  // into a space (U+200B and U+FEFF too, which are not whitespace to Python), as "▁": in
  // seqio mode every segment tries the "<unk>" prefix.
  const bool try_prefix = spacing_ == SentinelSpacing::seqio || segment.starts_with(' ') ||
                          segment.starts_with(kSpaceSymbol);
  if (try_prefix) {
    constexpr std::string_view kPrefix = "<unk>";
    std::string text(kPrefix);
    text.append(segment);
    const sentencepiece::ImmutableSentencePieceText spt = raw_->EncodeAsImmutableProto(text);
    // The prefix's pieces are dropped only when a piece starts exactly where the segment
    // does, with "▁": the leading character became a word start. Otherwise (no such
    // character; one nmt_nfkc deletes, VT or U+001C..U+001F; or U+0085, which it keeps and
    // which then merges with the prefix's unknown ">" into one <unk>) the segment is
    // encoded as it is, as seqio and transformers do.
    const size_t n = spt.pieces_size();
    size_t first = 0;
    while (first < n && spt.pieces(static_cast<int>(first)).end() <= kPrefix.size()) ++first;
    if (first < n && spt.pieces(static_cast<int>(first)).begin() >= kPrefix.size() &&
        spt.pieces(static_cast<int>(first)).piece().starts_with(kSpaceSymbol)) {
      for (size_t i = first; i < n; ++i) out.push_back(spt.pieces(static_cast<int>(i)).id());
      return;
    }
  }
  std::vector<int> ids;
  check_status(raw_->Encode(segment, &ids), "encode");
  out.insert(out.end(), ids.begin(), ids.end());
}

std::vector<int64_t> T5Tokenizer::encode(std::string_view text, bool add_eos) const {
  std::vector<int64_t> out;
  if (!text.empty()) {
    // As transformers' legacy=False: "▁" in the text is a space, and the text starts a word.
    // word_start: word_ adds the "▁" that starts each segment itself; U+0085, which
    // nmt_nfkc keeps as a character, is whitespace that transformers 5 splits words on.
    const bool word_start = spacing_ == SentinelSpacing::word_start;
    std::string s(word_start ? std::string_view() : kSpaceSymbol);
    s.reserve(text.size() + kSpaceSymbol.size());
    for (size_t i = 0; i < text.size();) {
      if (text.substr(i, kSpaceSymbol.size()) == kSpaceSymbol) {
        s.push_back(' ');
        i += kSpaceSymbol.size();
      } else if (word_start && text.substr(i, kNextLine.size()) == kNextLine) {
        s.push_back(' ');
        i += kNextLine.size();
      } else {
        s.push_back(text[i++]);
      }
    }
    const bool strip = spacing_ == SentinelSpacing::strip;
    std::string_view rest(s);
    bool after_sentinel = false;
    while (!rest.empty()) {
      size_t start = rest.find(kSentinelPrefix);
      size_t len = 0;
      int64_t n = 0;
      while (start != std::string_view::npos &&
             (len = match_sentinel(rest, start, extra_ids_, &n)) == 0)
        start = rest.find(kSentinelPrefix, start + 1);
      std::string_view segment = rest.substr(0, start);
      if (strip && after_sentinel) segment = utf8::lstrip(segment);
      if (strip && start != std::string_view::npos) segment = utf8::rstrip(segment);
      if (word_start) {
        // transformers 5 encodes each segment between sentinels as a text of its own.
        std::vector<int> ids;
        check_status(word_->Encode(segment, &ids), "encode");
        out.insert(out.end(), ids.begin(), ids.end());
      } else if (!segment.empty()) {
        encode_segment(segment, out);
      }
      if (start == std::string_view::npos) break;
      out.push_back(sentinel_id(n));
      rest.remove_prefix(start + len);
      after_sentinel = true;
    }
    // The "▁" that starts the text is not a piece of its own before a sentinel.
    if (!word_start && out.size() > 1 && out[0] == space_piece_id_ && is_sentinel(out[1]))
      out.erase(out.begin());
  }
  if (add_eos) out.push_back(kEosId);
  return out;
}

std::vector<int64_t> T5Tokenizer::encode(std::string_view text, bool add_eos,
                                         int64_t max_length) const {
  SP_CHECK(max_length >= 0, "[tokenizer] max_length must be >= 0, got ", max_length);
  std::vector<int64_t> ids = encode(text, add_eos);
  if (max_length > 0 && static_cast<int64_t>(ids.size()) > max_length) {
    ids.resize(static_cast<size_t>(max_length));
    if (add_eos) ids.back() = kEosId;
  }
  return ids;
}

std::vector<std::string> T5Tokenizer::tokenize(std::string_view text, bool add_eos) const {
  std::vector<std::string> pieces;
  for (int64_t id : encode(text, add_eos)) pieces.push_back(id_to_piece(id));
  return pieces;
}

BatchEncoding T5Tokenizer::encode_batch(const std::vector<std::string>& texts,
                                        const BatchOptions& options) const {
  SP_CHECK(options.max_length >= 0, "[tokenizer] encode_batch: max_length must be >= 0, got ",
           options.max_length);
  SP_CHECK(options.pad_to_multiple_of >= 0,
           "[tokenizer] encode_batch: pad_to_multiple_of must be >= 0, got ",
           options.pad_to_multiple_of);
  SP_CHECK(options.padding != Padding::max_length || options.max_length > 0,
           "[tokenizer] encode_batch: Padding::max_length needs max_length > 0");
  SP_CHECK(!options.truncation || options.max_length > 0,
           "[tokenizer] encode_batch: truncation needs max_length > 0");
  // As transformers: rows cut to max_length and then padded past it make no sense.
  SP_CHECK(!options.truncation || options.padding == Padding::none ||
               options.pad_to_multiple_of == 0 ||
               options.max_length % options.pad_to_multiple_of == 0,
           "[tokenizer] encode_batch: truncation to max_length ", options.max_length,
           " is not a multiple of pad_to_multiple_of ", options.pad_to_multiple_of);
  std::vector<std::vector<int64_t>> rows;
  rows.reserve(texts.size());
  int64_t longest = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    rows.push_back(encode(texts[i], options.add_eos, options.truncation ? options.max_length : 0));
    const auto n = static_cast<int64_t>(rows.back().size());
    SP_CHECK(options.max_length == 0 || n <= options.max_length, "[tokenizer] encode_batch: text ",
             i, " has ", n, " tokens, more than max_length ", options.max_length,
             " (set truncation to cut it)");
    longest = std::max(longest, n);
  }
  int64_t length = options.padding == Padding::max_length ? options.max_length : longest;
  // As transformers: without padding, pad_to_multiple_of does nothing.
  if (options.pad_to_multiple_of > 0 && options.padding != Padding::none) {
    const int64_t m = options.pad_to_multiple_of;
    length = (length + m - 1) / m * m;
  }

  BatchEncoding out;
  out.batch = static_cast<int64_t>(rows.size());
  out.length = length;
  out.input_ids.assign(static_cast<size_t>(out.batch * length), kPadId);
  out.attention_mask.assign(static_cast<size_t>(out.batch * length), 0);
  for (int64_t b = 0; b < out.batch; ++b) {
    const auto& row = rows[static_cast<size_t>(b)];
    const auto offset = static_cast<std::ptrdiff_t>(b * length);
    std::copy(row.begin(), row.end(), out.input_ids.begin() + offset);
    std::fill_n(out.attention_mask.begin() + offset, row.size(), 1);
    out.lengths.push_back(static_cast<int64_t>(row.size()));
  }
  return out;
}

std::vector<int64_t> BatchEncoding::row(int64_t i) const {
  SP_CHECK(i >= 0 && i < batch, "[tokenizer] row ", i, " of a batch of ", batch);
  const auto begin = input_ids.begin() + static_cast<std::ptrdiff_t>(i * length);
  return {begin, begin + static_cast<std::ptrdiff_t>(lengths[static_cast<size_t>(i)])};
}

Tensor BatchEncoding::input_ids_tensor(DType dtype) const {
  SP_CHECK(dtype == DType::i64 || dtype == DType::i32,
           "[tokenizer] input_ids_tensor: ids are i64 or i32, not ", dtype_name(dtype));
  return Tensor::from_vector(input_ids, Shape{batch, length}, dtype);
}

Tensor BatchEncoding::attention_mask_tensor(DType dtype) const {
  return Tensor::from_vector(attention_mask, Shape{batch, length}, dtype);
}

// --- decoding -------------------------------------------------------------------------------

std::string T5Tokenizer::decode_run(std::span<const int64_t> ids) const {
  // transformers' T5Tokenizer.convert_tokens_to_string: SentencePiece decodes the runs of
  // ordinary pieces; pad, eos and unk are written as their pieces, preceded by a space
  // unless another one precedes them.
  std::string out;
  std::vector<int> run;
  std::string piece_text;
  bool previous_special = false;
  auto flush = [&]() {
    piece_text.clear();
    if (!run.empty()) check_status(model_->Decode(run, &piece_text), "decode");
    out += piece_text;
    run.clear();
  };
  for (int64_t id : ids) {
    if (id == kPadId || id == kEosId || id == kUnkId) {
      if (!previous_special) out += ' ';
      flush();
      out += model_->IdToPiece(static_cast<int>(id));
      previous_special = true;
    } else {
      run.push_back(static_cast<int>(id));
      previous_special = false;
    }
  }
  flush();
  return std::string(utf8::strip(out));
}

std::string T5Tokenizer::decode(std::span<const int64_t> ids, const DecodeOptions& options) const {
  size_t n = ids.size();
  if (options.stop_at_eos)
    n = static_cast<size_t>(std::find(ids.begin(), ids.end(), kEosId) - ids.begin());
  std::vector<int64_t> kept;
  kept.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t id = ids[i];
    SP_CHECK(id >= 0, "[tokenizer] decode: id ", id, " at position ", i, " is negative");
    if (id >= vocab_size()) {
      SP_CHECK(options.skip_special_tokens, "[tokenizer] decode: id ", id, " at position ", i,
               " is outside the vocabulary [0, ", vocab_size(), ")");
      if (options.keep_unknown) kept.push_back(kUnkId);
      continue;
    }
    if (options.skip_special_tokens && is_special(id) &&
        !(options.keep_sentinels && is_sentinel(id)) && !(options.keep_unknown && id == kUnkId))
      continue;
    kept.push_back(id);
  }
  if (spacing_ == SentinelSpacing::word_start) return decode_word_start(kept);
  // transformers' _decode: runs between sentinels are decoded on their own, then joined with
  // the sentinels by single spaces.
  std::string out;
  bool first = true;
  auto append = [&](std::string_view part) {
    if (!first) out += ' ';
    out += part;
    first = false;
  };
  size_t run_begin = 0;
  for (size_t i = 0; i <= kept.size(); ++i) {
    if (i < kept.size() && !is_sentinel(kept[i])) continue;
    if (i > run_begin) {
      const std::string text = decode_run(std::span(kept).subspan(run_begin, i - run_begin));
      if (!text.empty() || i == kept.size()) append(text);
    }
    if (i < kept.size()) append(id_to_piece(kept[i]));
    run_begin = i + 1;
  }
  return out;
}

std::string T5Tokenizer::decode_word_start(std::span<const int64_t> ids) const {
  // transformers 5 decodes with tokenizers' Metaspace decoder (prepend_scheme="always"):
  // the pieces, special ones included, are concatenated with "▁" read as a space, except
  // in the first piece, whose "▁" are dropped. Nothing else is added or trimmed.
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::string piece = id_to_piece(ids[i]);
    for (size_t p = 0; p < piece.size();) {
      if (piece.compare(p, kSpaceSymbol.size(), kSpaceSymbol) == 0) {
        if (i > 0) out += ' ';
        p += kSpaceSymbol.size();
      } else {
        out += piece[p++];
      }
    }
  }
  return out;
}

std::vector<std::string> T5Tokenizer::decode_batch(const Tensor& ids,
                                                   const DecodeOptions& options) const {
  SP_CHECK(ids.dim() == 2 && (ids.dtype() == DType::i64 || ids.dtype() == DType::i32),
           "[tokenizer] decode_batch: ids must be [batch, length] i64 or i32, got ", describe(ids));
  const std::vector<int64_t> values = ids.to_vector<int64_t>();
  const int64_t batch = ids.size(0);
  const int64_t length = ids.size(1);
  std::vector<std::string> out;
  out.reserve(static_cast<size_t>(batch));
  for (int64_t b = 0; b < batch; ++b)
    out.push_back(decode(
        std::span(values).subspan(static_cast<size_t>(b * length), static_cast<size_t>(length)),
        options));
  return out;
}

}  // namespace sp
