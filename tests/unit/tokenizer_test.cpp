// T5Tokenizer against tests/fixtures/tokenizer/expected.json (written by
// scripts/make_tokenizer_fixtures.py from the sentencepiece Python package, seqio's sentinel
// pieces and transformers 4's T5Tokenizer(legacy=False)) and expected_hf5.json (written by
// the same script with --hf5, from transformers 5's T5Tokenizer: SentinelSpacing::word_start),
// and vocabulary training.
#include <sentencepiece_trainer.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "models/tokenizer/charsmap_check.h"
#include "models/tokenizer/t5_tokenizer.h"
#include "models/tokenizer/train_vocab.h"
#include "test_util.h"

namespace sp {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string fixture_path(const std::string& name) {
  return std::string(SP_FIXTURES_DIR) + "/tokenizer/" + name;
}

const json& expected() {
  static const json j = [] {
    std::ifstream in(fixture_path("expected.json"));
    EXPECT_TRUE(in.good()) << "missing " << fixture_path("expected.json");
    return json::parse(in);
  }();
  return j;
}

// transformers 5's expectations for SentinelSpacing::word_start.
const json& expected_hf5() {
  static const json j = [] {
    std::ifstream in(fixture_path("expected_hf5.json"));
    EXPECT_TRUE(in.good()) << "missing " << fixture_path("expected_hf5.json");
    return json::parse(in);
  }();
  return j;
}

const T5Tokenizer& tokenizer() {
  static const T5Tokenizer tok = T5Tokenizer::load(fixture_path("spiece.model"));
  return tok;
}

const T5Tokenizer& strip_tokenizer() {
  static const T5Tokenizer tok =
      T5Tokenizer::load(fixture_path("spiece.model"), {.sentinel_spacing = SentinelSpacing::strip});
  return tok;
}

const T5Tokenizer& word_start_tokenizer() {
  static const T5Tokenizer tok = T5Tokenizer::load(
      fixture_path("spiece.model"), {.sentinel_spacing = SentinelSpacing::word_start});
  return tok;
}

std::vector<int64_t> ids_of(const json& j) { return j.get<std::vector<int64_t>>(); }

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

// A fresh directory under /tmp, removed by the destructor.
struct TempDir {
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("sp_tokenizer_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
  fs::path path;
};

// --- fixture: encoding ------------------------------------------------------------------------

TEST(Tokenizer, fixture_sizes_and_special_ids) {
  const auto& tok = tokenizer();
  const int64_t n = expected()["spm_size"];
  EXPECT_EQ(tok.spm_size(), n);
  EXPECT_EQ(tok.extra_ids(), 100);
  EXPECT_EQ(tok.vocab_size(), expected()["vocab_size"].get<int64_t>());
  EXPECT_EQ(tok.vocab_size(), n + 100);
  for (const auto& [id, piece] : expected()["pieces"].items())
    EXPECT_EQ(tok.id_to_piece(std::stoll(id)), piece.get<std::string>()) << "id " << id;
  EXPECT_EQ(tok.id_to_piece(0), "<pad>");
  EXPECT_EQ(tok.id_to_piece(1), "</s>");
  EXPECT_EQ(tok.id_to_piece(2), "<unk>");
  EXPECT_EQ(tok.pad_id(), 0);
  EXPECT_EQ(tok.eos_id(), 1);
  EXPECT_EQ(tok.unk_id(), 2);
}

TEST(Tokenizer, check_fits_needs_every_id_inside_the_embedding) {
  const auto& tok = tokenizer();
  EXPECT_NO_THROW(tok.check_fits(tok.vocab_size(), "m"));
  EXPECT_NO_THROW(tok.check_fits(tok.vocab_size() + 28, "m"));  // T5 rounds its rows up
  EXPECT_THROW_MSG(tok.check_fits(tok.vocab_size() - 1, "ckpt/config.json"),
                   str_cat("has ", tok.vocab_size(), " ids (", tok.spm_size(),
                           " pieces + 100 sentinels) but the model ckpt/config.json has "
                           "vocab_size ",
                           tok.vocab_size() - 1));
}

// Every fixture case's ids (with and without eos) and pieces.
void expect_encodes(const T5Tokenizer& tok, const nlohmann::json& cases) {
  for (const auto& c : cases) {
    const std::string text = c["text"];
    SCOPED_TRACE("text: \"" + text + "\" (expected from " +
                 c["expected_source"].get<std::string>() + ")");
    const std::vector<int64_t> want = ids_of(c["expected"]);
    EXPECT_EQ(tok.encode(text), want);
    std::vector<int64_t> no_eos(want.begin(), want.end() - 1);
    EXPECT_EQ(tok.encode(text, /*add_eos=*/false), no_eos);
    EXPECT_EQ(tok.tokenize(text, /*add_eos=*/true), c["pieces"].get<std::vector<std::string>>());
  }
}

TEST(Tokenizer, encode_matches_fixture) { expect_encodes(tokenizer(), expected()["cases"]); }

TEST(Tokenizer, strip_spacing_matches_transformers_defaults) {
  for (const auto& c : expected()["cases"]) {
    const std::string text = c["text"];
    SCOPED_TRACE("text: \"" + text + "\"");
    EXPECT_EQ(strip_tokenizer().encode(text), ids_of(c["expected_strip"]));
  }
}

TEST(Tokenizer, sentinel_spacing_by_hand) {
  // Independent of the fixture's generator: what seqio's "▁<extra_id_N>" pieces imply.
  const auto& tok = tokenizer();
  const int64_t s0 = tok.vocab_size() - 1;
  const int64_t s1 = tok.vocab_size() - 2;
  const std::vector<int64_t> cat = tok.encode("cat", false);  // starts a word: "▁..."
  ASSERT_FALSE(cat.empty());
  auto concat = [](std::initializer_list<std::vector<int64_t>> parts) {
    std::vector<int64_t> out;
    for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
  };
  EXPECT_EQ(tok.encode("<extra_id_0> cat", false), concat({{s0}, cat}));
  EXPECT_EQ(tok.encode("<extra_id_0>  \t cat <extra_id_1>", false), concat({{s0}, cat, {s1}}));
  // No "▁" piece between a sentinel and the punctuation that follows it.
  const std::vector<int64_t> after = tok.encode("<extra_id_0>.", false);
  ASSERT_GE(after.size(), 2u);
  EXPECT_EQ(after[0], s0);
  EXPECT_NE(tok.id_to_piece(after[1]).rfind("\xE2\x96\x81", 0), 0u) << tok.id_to_piece(after[1]);
  EXPECT_EQ(after, (std::vector<int64_t>{s0, tok.piece_to_id(".")}));
  // Sentinels without spaces around them, adjacent, and the largest one.
  EXPECT_EQ(tok.encode("<extra_id_0><extra_id_1>", false), (std::vector<int64_t>{s0, s1}));
  EXPECT_EQ(tok.encode("<extra_id_99>"), (std::vector<int64_t>{tok.spm_size(), 1}));
  // Not sentinels: out of range, leading zeros, unterminated.
  for (const char* text : {"<extra_id_100>", "<extra_id_01>", "<extra_id_5", "<extra_id_>"}) {
    for (int64_t id : tok.encode(text)) EXPECT_FALSE(tok.is_sentinel(id)) << text;
  }
  // Strip spacing: the space after a sentinel is dropped, so the word does not start with "▁".
  const auto stripped = strip_tokenizer().encode("<extra_id_0> cat", false);
  EXPECT_EQ(stripped, strip_tokenizer().encode("<extra_id_0>cat", false));
  EXPECT_EQ(stripped, tok.encode("<extra_id_0>cat", false));
  EXPECT_NE(stripped, tok.encode("<extra_id_0> cat", false));
}

TEST(Tokenizer, whitespace_that_starts_no_word_after_a_sentinel_loses_no_text) {
  // Python calls VT, U+001F and U+0085 (NEL, what cp1252's "..." becomes when read as
  // latin-1) whitespace, but nmt_nfkc does not turn them into "▁": it deletes VT and U+001F,
  // and this vocabulary does not know U+0085. seqio sees "▁<extra_id_0>" followed by the text
  // as it is, and so does transformers (the segment does not start with " "). "<" and ">"
  // are unknown here too, so "<unk>" + segment merged ">" with unknown text after it into one
  // <unk> piece, dropped with the prefix: "漢字" and the <unk> of U+0085 vanished.
  const auto& tok = tokenizer();
  const int64_t s0 = tok.sentinel_id(0), unk = tok.unk_id();
  const std::string kanji = "\xE6\xBC\xA2\xE5\xAD\x97";
  EXPECT_EQ(tok.encode("<extra_id_0>" + kanji, false), (std::vector<int64_t>{s0, unk}));
  const std::vector<int64_t> plain = tok.encode("a <extra_id_0>x y");
  for (const std::string ws : {"\x0B", "\x1F", "\xC2\x85"}) {
    SCOPED_TRACE("whitespace: " + ::testing::PrintToString(ws));
    // U+0085 and the unknown text after it are one <unk>.
    EXPECT_EQ(tok.encode("<extra_id_0>" + ws + kanji, false), (std::vector<int64_t>{s0, unk}));
    std::vector<int64_t> want = plain;
    if (ws == "\xC2\x85") want.insert(want.begin() + 2, unk);
    EXPECT_EQ(tok.encode("a <extra_id_0>" + ws + "x y"), want);
    // Strip spacing drops all of Python's whitespace after a sentinel.
    EXPECT_EQ(strip_tokenizer().encode("a <extra_id_0>" + ws + "x y"),
              strip_tokenizer().encode("a <extra_id_0>x y"));
  }
  // Whitespace the normaliser turns into "▁" still starts a word.
  EXPECT_EQ(tok.encode("<extra_id_0>\n" + kanji, false),
            (std::vector<int64_t>{s0, tok.piece_to_id("\xE2\x96\x81"), unk}));
  // So do characters Python does not call whitespace but nmt_nfkc turns into a space
  // (U+200B, U+FEFF), as in seqio: "▁x", not "x".
  for (const std::string zw : {"\xE2\x80\x8B", "\xEF\xBB\xBF"}) {
    SCOPED_TRACE("character: " + ::testing::PrintToString(zw));
    EXPECT_EQ(tok.encode("a <extra_id_0>" + zw + "x y"), tok.encode("a <extra_id_0> x y"));
    EXPECT_NE(tok.encode("a <extra_id_0>" + zw + "x y"), plain);
  }
  // U+0085 then whitespace: its <unk>, then the word the whitespace starts (the <unk> was
  // dropped with the "<unk>" prefix it merged into).
  std::vector<int64_t> want = tok.encode("a <extra_id_0>\tx y");
  want.insert(want.begin() + 2, unk);
  EXPECT_EQ(tok.encode("a <extra_id_0>\xC2\x85\tx y"), want);
}

// --- fixture: decoding ------------------------------------------------------------------------

void expect_decodes(const T5Tokenizer& tok, const json& c, const std::vector<int64_t>& ids) {
  EXPECT_EQ(tok.decode(ids, {.skip_special_tokens = false}), c["decode"].get<std::string>());
  EXPECT_EQ(tok.decode(ids, {.skip_special_tokens = true}), c["decode_skip"].get<std::string>());
  EXPECT_EQ(tok.decode(ids, {.skip_special_tokens = true, .keep_sentinels = true}),
            c["decode_sentinels"].get<std::string>());
}

TEST(Tokenizer, decode_matches_fixture) {
  for (const auto& c : expected()["cases"]) {
    SCOPED_TRACE("text: \"" + c["text"].get<std::string>() + "\"");
    expect_decodes(tokenizer(), c, ids_of(c["expected"]));
  }
  for (const auto& c : expected()["decodes"]) {
    SCOPED_TRACE("ids: " + c["ids"].dump());
    expect_decodes(tokenizer(), c, ids_of(c["ids"]));
  }
}

TEST(Tokenizer, strip_spacing_decodes_as_transformers4) {
  // Only encoding depends on strip: decoding is transformers 4's, as in seqio mode.
  for (const auto& c : expected()["decodes"]) {
    SCOPED_TRACE("ids: " + c["ids"].dump());
    expect_decodes(strip_tokenizer(), c, ids_of(c["ids"]));
  }
}

TEST(Tokenizer, decode_default_skips_special_tokens) {
  const auto& tok = tokenizer();
  const std::vector<int64_t> ids = tok.encode("the dog runs.");
  EXPECT_EQ(tok.decode(ids), "the dog runs.");
  std::vector<int64_t> padded = ids;
  padded.insert(padded.end(), {0, 0, 0});
  EXPECT_EQ(tok.decode(padded), "the dog runs.");
  EXPECT_EQ(tok.decode(std::vector<int64_t>{}), "");
}

TEST(Tokenizer, decode_stop_at_eos) {
  const auto& tok = tokenizer();
  std::vector<int64_t> ids = tok.encode("the dog");
  const std::vector<int64_t> tail = tok.encode("runs.");
  ids.insert(ids.end(), tail.begin(), tail.end());  // "the dog</s>runs.</s>"
  EXPECT_EQ(tok.decode(ids), "the dog runs.");
  EXPECT_EQ(tok.decode(ids, {.stop_at_eos = true}), "the dog");
  EXPECT_EQ(tok.decode(ids, {.skip_special_tokens = false, .stop_at_eos = true}), "the dog");
  EXPECT_EQ(tok.decode(std::vector<int64_t>{1, 5, 6}, {.stop_at_eos = true}), "");
}

TEST(Tokenizer, decode_out_of_range_ids) {
  const auto& tok = tokenizer();
  const int64_t v = tok.vocab_size();
  std::vector<int64_t> ids = tok.encode("the dog", false);
  ids.push_back(v + 5);  // an unused embedding row (T5: 32100..32127)
  EXPECT_EQ(tok.decode(ids), "the dog");
  EXPECT_THROW_MSG(tok.decode(ids, {.skip_special_tokens = false}),
                   "id " + std::to_string(v + 5) + " at position 3 is outside the vocabulary");
  EXPECT_THROW_MSG(tok.decode(std::vector<int64_t>{4, -100}), "id -100 at position 1 is negative");
}

TEST(Tokenizer, decode_batch_rows) {
  const auto& tok = tokenizer();
  const BatchEncoding enc = tok.encode_batch({"the dog", "<extra_id_0> runs."});
  const auto texts = tok.decode_batch(enc.input_ids_tensor());
  ASSERT_EQ(texts.size(), 2u);
  EXPECT_EQ(texts[0], "the dog");
  EXPECT_EQ(texts[1], "runs.");
  const auto kept = tok.decode_batch(enc.input_ids_tensor(DType::i32), {.keep_sentinels = true});
  EXPECT_EQ(kept[1], "<extra_id_0> runs.");
  EXPECT_THROW_MSG(tok.decode_batch(Tensor::zeros(Shape{4}, DType::i64)),
                   "[tokenizer] decode_batch");
  EXPECT_THROW_MSG(tok.decode_batch(Tensor::zeros(Shape{2, 2}, DType::f32)), "i64 or i32");
}

// --- pieces and sentinels ---------------------------------------------------------------------

TEST(Tokenizer, sentinel_ids_and_pieces) {
  const auto& tok = tokenizer();
  const int64_t n = tok.spm_size();
  EXPECT_EQ(tok.sentinel_id(0), n + 99);
  EXPECT_EQ(tok.sentinel_id(99), n);
  EXPECT_EQ(tok.id_to_piece(n + 99), "<extra_id_0>");
  EXPECT_EQ(tok.id_to_piece(n), "<extra_id_99>");
  EXPECT_EQ(tok.id_to_piece(n + 90), "<extra_id_9>");
  EXPECT_EQ(tok.piece_to_id("<extra_id_0>"), n + 99);
  EXPECT_EQ(tok.piece_to_id("<extra_id_42>"), n + 57);
  EXPECT_EQ(tok.piece_to_id("<extra_id_100>"), tok.unk_id());
  EXPECT_EQ(tok.piece_to_id("</s>"), 1);
  EXPECT_EQ(tok.piece_to_id("<pad>"), 0);
  EXPECT_EQ(tok.piece_to_id("no such piece"), 2);
  EXPECT_EQ(tok.piece_to_id(""), 2);
  for (int64_t id = 0; id < n; ++id) {
    if (id == tok.unk_id()) continue;
    ASSERT_EQ(tok.piece_to_id(tok.id_to_piece(id)), id) << tok.id_to_piece(id);
  }
  EXPECT_TRUE(tok.is_sentinel(n));
  EXPECT_TRUE(tok.is_sentinel(n + 99));
  EXPECT_FALSE(tok.is_sentinel(n - 1));
  EXPECT_FALSE(tok.is_sentinel(n + 100));
  EXPECT_TRUE(tok.is_special(0) && tok.is_special(1) && tok.is_special(2));
  EXPECT_FALSE(tok.is_special(3));
  EXPECT_THROW_MSG(tok.sentinel_id(100), "<extra_id_100> does not exist");
  EXPECT_THROW_MSG(tok.id_to_piece(n + 100), "outside the vocabulary");
  EXPECT_THROW_MSG(tok.id_to_piece(-1), "id -1 is outside the vocabulary");
}

TEST(Tokenizer, fewer_extra_ids) {
  const T5Tokenizer tok = T5Tokenizer::load(fixture_path("spiece.model"), {.extra_ids = 10});
  EXPECT_EQ(tok.vocab_size(), tok.spm_size() + 10);
  EXPECT_EQ(tok.encode("<extra_id_9>"), (std::vector<int64_t>{tok.spm_size(), 1}));
  for (int64_t id : tok.encode("<extra_id_10>")) EXPECT_FALSE(tok.is_sentinel(id));
}

// --- batches --------------------------------------------------------------------------------

void expect_batches(const T5Tokenizer& tok, const json& fixture) {
  const auto texts = fixture["batch_texts"].get<std::vector<std::string>>();
  for (const auto& b : fixture["batches"]) {
    const json& cfg = b["config"];
    SCOPED_TRACE("config: " + cfg.dump());
    const auto want_ids = b["input_ids"].get<std::vector<std::vector<int64_t>>>();
    const auto want_mask = b["attention_mask"].get<std::vector<std::vector<int64_t>>>();
    const int64_t max_length = cfg["max_length"].is_null() ? 0 : cfg["max_length"].get<int64_t>();
    if (cfg["padding"] == "do_not_pad") {
      for (size_t i = 0; i < texts.size(); ++i)
        EXPECT_EQ(tok.encode(texts[i], cfg["add_eos"].get<bool>(), max_length), want_ids[i]);
      continue;
    }
    BatchOptions opt;
    opt.add_eos = cfg["add_eos"];
    opt.padding = cfg["padding"] == "max_length" ? Padding::max_length : Padding::longest;
    opt.truncation = cfg["truncation"];
    opt.max_length = max_length;
    opt.pad_to_multiple_of =
        cfg["pad_to_multiple_of"].is_null() ? 0 : cfg["pad_to_multiple_of"].get<int64_t>();
    const BatchEncoding enc = tok.encode_batch(texts, opt);
    ASSERT_EQ(enc.batch, static_cast<int64_t>(texts.size()));
    ASSERT_EQ(enc.length, static_cast<int64_t>(want_ids[0].size()));
    for (int64_t i = 0; i < enc.batch; ++i) {
      const auto begin = static_cast<std::ptrdiff_t>(i * enc.length);
      EXPECT_EQ(std::vector<int64_t>(enc.input_ids.begin() + begin,
                                     enc.input_ids.begin() + begin + enc.length),
                want_ids[i]);
      EXPECT_EQ(std::vector<int64_t>(enc.attention_mask.begin() + begin,
                                     enc.attention_mask.begin() + begin + enc.length),
                want_mask[i]);
      int64_t tokens = 0;
      for (int64_t m : want_mask[i]) tokens += m;
      EXPECT_EQ(enc.lengths[i], tokens);
      EXPECT_EQ(enc.row(i),
                std::vector<int64_t>(want_ids[i].begin(), want_ids[i].begin() + tokens));
    }
  }
}

TEST(Tokenizer, batches_match_fixture) { expect_batches(tokenizer(), expected()); }

TEST(Tokenizer, batch_truncation_keeps_eos) {
  const auto& tok = tokenizer();
  const std::string text = "a much longer sentence with several words in it";
  const auto full = tok.encode(text);
  ASSERT_GT(full.size(), 6u);
  const BatchEncoding enc = tok.encode_batch(
      {text, "dog"}, {.padding = Padding::longest, .max_length = 6, .truncation = true});
  EXPECT_EQ(enc.length, 6);
  std::vector<int64_t> want(full.begin(), full.begin() + 5);
  want.push_back(1);
  EXPECT_EQ(enc.row(0), want);
  EXPECT_EQ(enc.row(1), tok.encode("dog"));
  // A limit of one leaves only eos.
  EXPECT_EQ(tok.encode(text, true, 1), (std::vector<int64_t>{1}));
  EXPECT_EQ(tok.encode(text, false, 2), std::vector<int64_t>(full.begin(), full.begin() + 2));
}

TEST(Tokenizer, batch_tensors) {
  const auto& tok = tokenizer();
  const BatchEncoding enc = tok.encode_batch({"dog", "the dog runs.", ""});
  const Tensor ids = enc.input_ids_tensor();
  EXPECT_EQ(ids.shape(), (Shape{3, enc.length}));
  EXPECT_EQ(ids.dtype(), DType::i64);
  EXPECT_EQ(ids.to_vector<int64_t>(), enc.input_ids);
  const Tensor ids32 = enc.input_ids_tensor(DType::i32);
  EXPECT_EQ(ids32.dtype(), DType::i32);
  EXPECT_EQ(ids32.to_vector<int64_t>(), enc.input_ids);
  const Tensor mask = enc.attention_mask_tensor(DType::boolean);
  EXPECT_EQ(mask.dtype(), DType::boolean);
  EXPECT_EQ(mask.shape(), (Shape{3, enc.length}));
  const std::vector<bool> got = [&] {
    std::vector<bool> v;
    for (bool b : mask.to_vector<bool>()) v.push_back(b);
    return v;
  }();
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], enc.attention_mask[i] == 1) << i;
  EXPECT_EQ(enc.attention_mask_tensor(DType::f32).to_vector<double>()[0], 1.0);
  // Row 2 is the empty text: eos only.
  EXPECT_EQ(enc.lengths[2], 1);
  EXPECT_EQ(enc.input_ids[static_cast<size_t>(2 * enc.length)], 1);
  EXPECT_THROW_MSG(enc.input_ids_tensor(DType::f32), "ids are i64 or i32");

  const BatchEncoding empty = tok.encode_batch({});
  EXPECT_EQ(empty.batch, 0);
  EXPECT_EQ(empty.input_ids_tensor().shape(), (Shape{0, 0}));
}

TEST(Tokenizer, no_padding_ignores_pad_to_multiple_of) {
  // Padding::none keeps the longest row's length, as transformers' padding=False ignores
  // pad_to_multiple_of; it used to round the length up to 16 anyway.
  const auto& tok = tokenizer();
  const BatchEncoding enc = tok.encode_batch({"dog", "the dog runs."},
                                             {.padding = Padding::none, .pad_to_multiple_of = 16});
  const auto longest = static_cast<int64_t>(tok.encode("the dog runs.").size());
  ASSERT_NE(longest % 16, 0);
  EXPECT_EQ(enc.length, longest);
  EXPECT_EQ(enc.row(1), tok.encode("the dog runs."));
  EXPECT_EQ(tok.encode_batch({"dog", "the dog runs."},
                             {.padding = Padding::longest, .pad_to_multiple_of = 16})
                .length,
            16);
}

TEST(Tokenizer, batch_option_errors) {
  const auto& tok = tokenizer();
  EXPECT_THROW_MSG(tok.encode_batch({"dog"}, {.padding = Padding::max_length}),
                   "Padding::max_length needs max_length > 0");
  const size_t n = tok.encode("the dog runs.").size();
  ASSERT_GT(n, 3u);
  EXPECT_THROW_MSG(tok.encode_batch({"dog", "the dog runs."}, {.max_length = 3}),
                   "text 1 has " + std::to_string(n) + " tokens, more than max_length 3");
  EXPECT_THROW_MSG(tok.encode_batch({"dog"}, {.truncation = true}), "truncation needs max_length");
  // Rows cut to 3 tokens, then padded to 8: refused, as transformers does.
  EXPECT_THROW_MSG(
      tok.encode_batch({"dog"}, {.max_length = 3, .truncation = true, .pad_to_multiple_of = 8}),
      "truncation to max_length 3 is not a multiple of pad_to_multiple_of 8");
  EXPECT_EQ(
      tok.encode_batch({"dog"}, {.max_length = 8, .truncation = true, .pad_to_multiple_of = 4})
          .length,
      4);
  EXPECT_THROW_MSG(tok.encode("dog", true, -1), "max_length must be >= 0");
}

// --- SentinelSpacing::word_start: transformers 5 ------------------------------------------------

TEST(Tokenizer, default_spacing_is_seqio) {
  EXPECT_EQ(T5TokenizerOptions{}.sentinel_spacing, SentinelSpacing::seqio);
  EXPECT_EQ(tokenizer().sentinel_spacing(), SentinelSpacing::seqio);
  EXPECT_EQ(strip_tokenizer().sentinel_spacing(), SentinelSpacing::strip);
  EXPECT_EQ(word_start_tokenizer().sentinel_spacing(), SentinelSpacing::word_start);
}

TEST(Tokenizer, word_start_encode_matches_transformers5) {
  const auto& tok = word_start_tokenizer();
  EXPECT_EQ(tok.spm_size(), expected_hf5()["spm_size"].get<int64_t>());
  EXPECT_EQ(tok.vocab_size(), expected_hf5()["vocab_size"].get<int64_t>());
  ASSERT_GE(expected_hf5()["cases"].size(), expected()["cases"].size());
  expect_encodes(tok, expected_hf5()["cases"]);
}

TEST(Tokenizer, word_start_decode_matches_transformers5) {
  ASSERT_GE(expected_hf5()["decodes"].size(), expected()["decodes"].size());
  for (const auto& c : expected_hf5()["cases"]) {
    SCOPED_TRACE("text: \"" + c["text"].get<std::string>() + "\"");
    expect_decodes(word_start_tokenizer(), c, ids_of(c["expected"]));
  }
  for (const auto& c : expected_hf5()["decodes"]) {
    SCOPED_TRACE("ids: " + c["ids"].dump());
    expect_decodes(word_start_tokenizer(), c, ids_of(c["ids"]));
  }
}

TEST(Tokenizer, word_start_batches_match_transformers5) {
  expect_batches(word_start_tokenizer(), expected_hf5());
}

TEST(Tokenizer, word_start_by_hand) {
  // Independent of the fixture: what transformers 5.24 gives for this vocabulary.
  const auto& tok = word_start_tokenizer();
  const int64_t s0 = tok.sentinel_id(0), s1 = tok.sentinel_id(1);
  const int64_t space = tok.piece_to_id("\xE2\x96\x81");
  auto pieces = [&](const std::string& text) { return tok.tokenize(text); };
  using P = std::vector<std::string>;
  const std::string w = "\xE2\x96\x81";  // "▁"
  // Every text segment after a sentinel starts a word, whatever follows the sentinel.
  EXPECT_EQ(pieces("<extra_id_0>."), (P{"<extra_id_0>", w, "."}));
  EXPECT_EQ(pieces("the<extra_id_0>cat"), (P{w + "the", "<extra_id_0>", w + "ca", "t"}));
  EXPECT_EQ(pieces("<extra_id_0> cat"), (P{"<extra_id_0>", w + "ca", "t"}));
  EXPECT_EQ(pieces("x <extra_id_0>y").back(), "y");
  EXPECT_EQ(tok.encode("x <extra_id_0>y"), tok.encode("x <extra_id_0> y"));
  EXPECT_EQ(tok.encode("<extra_id_0><extra_id_1>", false), (std::vector<int64_t>{s0, s1}));
  EXPECT_EQ(tok.encode("  <extra_id_0>  ", false), (std::vector<int64_t>{s0}));
  // seqio and strip differ from it there.
  EXPECT_NE(tokenizer().encode("<extra_id_0>."), tok.encode("<extra_id_0>."));
  EXPECT_NE(strip_tokenizer().encode("<extra_id_0> cat"), tok.encode("<extra_id_0> cat"));
  // Without sentinels (and U+0085) the modes agree.
  EXPECT_EQ(tok.encode("the dog runs."), tokenizer().encode("the dog runs."));

  // Decoding: tokenizers' Metaspace decoder, no spaces around sentinels and no trimming.
  const std::vector<int64_t> dog = tok.encode("the dog", false);  // "▁the", "▁do", "g"
  const std::vector<int64_t> runs = tok.encode("runs.", false);   // "▁r", "un", "s", "."
  auto cat = [](std::initializer_list<std::vector<int64_t>> parts) {
    std::vector<int64_t> out;
    for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
  };
  const DecodeOptions raw{.skip_special_tokens = false};
  EXPECT_EQ(tok.decode(cat({dog, {s0, tok.piece_to_id("s")}}), raw), "the dog<extra_id_0>s");
  EXPECT_EQ(tok.decode(cat({dog, {tok.unk_id()}, runs}), raw), "the dog<unk> runs.");
  EXPECT_EQ(tok.decode(cat({{s0, s1}, dog}), raw), "<extra_id_0><extra_id_1> the dog");
  EXPECT_EQ(tok.decode(cat({{space, space, space}, dog})), "   the dog");
  EXPECT_EQ(tok.decode(cat({{s0}, dog, {s1}, runs, {1}}), {.keep_sentinels = true}),
            "<extra_id_0> the dog<extra_id_1> runs.");
  EXPECT_EQ(tok.decode(cat({{0}, dog, {1, 0}})), "the dog");
  EXPECT_EQ(tok.decode(cat({dog, {1}, runs}), {.stop_at_eos = true}), "the dog");
  // The other modes keep transformers 4's decode.
  EXPECT_EQ(tokenizer().decode(cat({dog, {s0, tok.piece_to_id("s")}}), raw),
            "the dog <extra_id_0> s");
  EXPECT_EQ(strip_tokenizer().decode(cat({{space, space, space}, dog})), "the dog");
}

// --- loading errors -------------------------------------------------------------------------

TEST(Tokenizer, load_errors_name_the_file) {
  TempDir dir;
  const std::string missing = dir.file("no_such_spiece.model");
  EXPECT_THROW_MSG(T5Tokenizer::load(missing), "cannot open SentencePiece model '" + missing + "'");
  EXPECT_THROW_MSG(T5Tokenizer::load(missing), "No such file or directory");

  const std::string empty = dir.file("empty.model");
  write_bytes(empty, "");
  EXPECT_THROW_MSG(T5Tokenizer::load(empty), "'" + empty + "' is empty");

  const std::string text = dir.file("text.model");
  write_bytes(text, "this is not a sentencepiece model\n");
  EXPECT_THROW_MSG(T5Tokenizer::load(text), "'" + text + "' is not a valid SentencePiece model");

  const std::string bytes = read_bytes(fixture_path("spiece.model"));
  const std::string truncated = dir.file("truncated.model");
  write_bytes(truncated, bytes.substr(0, bytes.size() / 2));
  EXPECT_THROW_MSG(T5Tokenizer::load(truncated),
                   "'" + truncated + "' is not a valid SentencePiece model");

  EXPECT_THROW_MSG(T5Tokenizer::load(dir.path.string()),
                   "'" + dir.path.string() + "': it is a directory");
  EXPECT_THROW_MSG(T5Tokenizer::load(fixture_path("spiece.model"), {.extra_ids = -1}),
                   "extra_ids must be >= 0");
}

TEST(Tokenizer, load_rejects_non_t5_special_ids) {
  // SentencePiece's own defaults: unk = 0, bos = 1, eos = 2, no pad.
  std::vector<std::string> lines;
  for (int i = 0; i < 200; ++i) lines.push_back("the quick brown fox " + std::to_string(i % 17));
  struct Lines : sentencepiece::SentenceIterator {
    explicit Lines(const std::vector<std::string>& l) : lines(l) {}
    bool done() const override { return i >= lines.size(); }
    void Next() override { ++i; }
    const std::string& value() const override { return lines[i]; }
    sentencepiece::util::Status status() const override { return {}; }
    const std::vector<std::string>& lines;
    size_t i = 0;
  } it(lines);
  std::string model;
  const auto status = sentencepiece::SentencePieceTrainer::Train(
      {{"vocab_size", "40"}, {"hard_vocab_limit", "false"}, {"minloglevel", "2"}}, &it, &model);
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_THROW_MSG(
      T5Tokenizer::from_serialized(model, "default_ids.model"),
      "'default_ids.model' does not use T5's special ids (pad=0, eos=1, unk=2): it has "
      "pad=-1, eos=2, unk=0");
}

// --- corrupt normalisation rules
// ------------------------------------------------------------------

std::string varint(uint64_t v) {
  std::string out;
  do {
    out += static_cast<char>((v & 0x7F) | (v > 0x7F ? 0x80 : 0));
    v >>= 7;
  } while (v);
  return out;
}

// A NormalizerSpec (field 3) or DenormalizerSpec (field 5) holding only precompiled_charsmap
// (field 2): appended to a model, protobuf merges it in and its charsmap replaces the model's.
std::string charsmap_override(const std::string& blob, int spec_field = 3) {
  const std::string spec = "\x12" + varint(blob.size()) + blob;
  return std::string(1, static_cast<char>(spec_field << 3 | 2)) + varint(spec.size()) + spec;
}

// A precompiled charsmap: the trie's size, its units (little-endian) and the strings.
std::string charsmap_blob(const std::vector<uint32_t>& units, const std::string& strings) {
  std::string blob;
  auto put = [&](uint32_t v) {
    for (int i = 0; i < 4; ++i) blob += static_cast<char>((v >> (8 * i)) & 0xFF);
  };
  put(static_cast<uint32_t>(4 * units.size()));
  for (uint32_t u : units) put(u);
  return blob + strings;
}

// darts-clone's double array by hand: the root's children at 256 ^ byte; 'a' (0x61) is a
// node with a leaf whose value (unit 256) is the offset of its replacement in strings.
std::vector<uint32_t> a_to_replacement_trie(uint32_t value) {
  std::vector<uint32_t> units(512, 0);
  units[0] = 256u << 10;                                  // root: offset 256
  units[256 ^ 0x61] = (0x61u << 10) | (1u << 8) | 0x61u;  // 'a': offset 0x61 (base 256), leaf
  units[256] = 0x80000000u | value;                       // the leaf: the replacement's offset
  return units;
}

TEST(Tokenizer, a_hand_built_charsmap_normalizes_as_the_check_reads_it) {
  const std::string model = read_bytes(fixture_path("spiece.model"));
  const T5Tokenizer plain = T5Tokenizer::from_serialized(model, "plain.model");
  ASSERT_NE(plain.encode("a"), plain.encode("x"));
  // "a" -> "x": the check's reading of the trie is the library's.
  const T5Tokenizer a_to_x = T5Tokenizer::from_serialized(
      model + charsmap_override(charsmap_blob(a_to_replacement_trie(0), std::string("x\0", 2))),
      "a_to_x.model");
  EXPECT_EQ(a_to_x.encode("a"), plain.encode("x"));
  EXPECT_EQ(a_to_x.encode("b"), plain.encode("b"));
}

TEST(Tokenizer, a_corrupt_charsmap_is_refused_before_any_text) {
  const std::string model = read_bytes(fixture_path("spiece.model"));
  // Every unit 0xFFFFFFFF: the root's children would be a gigabyte past the trie (this
  // crashed the first encode).
  const std::string all_ones = charsmap_blob(std::vector<uint32_t>(256, 0xFFFFFFFFu), "x");
  EXPECT_THROW_MSG(T5Tokenizer::from_serialized(model + charsmap_override(all_ones), "ff.model"),
                   "[tokenizer] 'ff.model': its normalizer_spec's precompiled_charsmap is "
                   "corrupt: node 0 has its children at 1073741568, outside the trie's 256 units");
  EXPECT_THROW_MSG(T5Tokenizer::from_serialized(model + charsmap_override(all_ones, 5), "ff.model"),
                   "its denormalizer_spec's precompiled_charsmap is corrupt");
  // A replacement offset past the strings, or one whose string never ends.
  EXPECT_THROW_MSG(
      T5Tokenizer::from_serialized(
          model + charsmap_override(charsmap_blob(a_to_replacement_trie(7), std::string("x\0", 2))),
          "far.model"),
      "corrupt: node 353's replacement at byte 7 does not end inside the replacement strings "
      "(2 bytes)");
  EXPECT_EQ(precompiled_charsmap_problem(charsmap_blob(a_to_replacement_trie(0), "x")),
            "node 353's replacement at byte 0 does not end inside the replacement strings (1 "
            "bytes)");
  // A trie that claims more bytes than the blob holds (sentencepiece accepts up to 3 more).
  std::string long_trie = charsmap_blob(a_to_replacement_trie(0), std::string("x\0", 2));
  long_trie[0] = static_cast<char>(static_cast<uint8_t>(long_trie[0]) + 3);
  EXPECT_EQ(precompiled_charsmap_problem(long_trie),
            "its trie of 2051 bytes runs past the blob's 2050 bytes after the size");
  EXPECT_EQ(precompiled_charsmap_problem("abc"),
            "it has 3 bytes, too few for a trie size and a trie");
  EXPECT_EQ(precompiled_charsmap_problem(charsmap_blob({}, "xyz")), "its trie has no units");
}

// --- vocabulary training ------------------------------------------------------------------------

// Deterministic text from a few syllables: words recur, so pieces longer than a character form.
std::vector<std::string> generated_lines(int n) {
  static const char* syllables[] = {"ka", "lo", "mi", "ren", "sta", "vo", "qu", "ith", "Ba", "Zel"};
  std::vector<std::string> lines;
  uint64_t s = 12345;
  for (int i = 0; i < n; ++i) {
    std::string line;
    const int words = 4 + static_cast<int>(i % 7);
    for (int w = 0; w < words; ++w) {
      if (w) line += ' ';
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      const int len = 1 + static_cast<int>((s >> 33) % 3);
      for (int k = 0; k < len; ++k) line += syllables[(s >> (40 + 4 * k)) % 10];
    }
    if (i % 5 == 0) {
      line += ' ';
      line += std::to_string(i);
      line += '.';
    }
    lines.push_back(line);
  }
  return lines;
}

void write_lines(const std::string& path, const std::vector<std::string>& lines, size_t begin,
                 size_t end) {
  std::ofstream out(path);
  for (size_t i = begin; i < end; ++i) out << lines[i] << (i % 50 == 0 ? "\r\n\n" : "\n");
}

TEST(TrainVocab, trains_a_loadable_t5_vocabulary) {
  TempDir dir;
  const auto lines = generated_lines(1500);
  write_lines(dir.file("a.txt"), lines, 0, 700);
  write_lines(dir.file("b.txt"), lines, 700, lines.size());
  const std::string model = dir.file("spiece.model");
  VocabTrainingOptions opt;
  opt.vocab_size = 120;
  opt.character_coverage = 1.0;
  train_vocab({dir.file("a.txt"), dir.file("b.txt")}, model, opt);

  const T5Tokenizer tok = T5Tokenizer::load(model);
  EXPECT_EQ(tok.spm_size(), 120);
  EXPECT_EQ(tok.vocab_size(), 220);
  EXPECT_EQ(tok.id_to_piece(0), "<pad>");
  EXPECT_EQ(tok.id_to_piece(1), "</s>");
  EXPECT_EQ(tok.id_to_piece(2), "<unk>");
  EXPECT_EQ(tok.piece_to_id("<s>"), tok.unk_id());  // no bos
  // Learned multi-character pieces, a round trip, T5's eos and sentinels.
  const auto ids = tok.encode(lines[3]);
  EXPECT_LT(ids.size(), lines[3].size());
  EXPECT_EQ(ids.back(), 1);
  EXPECT_EQ(tok.decode(ids), lines[3]);
  EXPECT_EQ(tok.encode("<extra_id_0> kalo", false)[0], 219);
  // nmt_nfkc: full-width letters are the ASCII ones.
  EXPECT_EQ(tok.encode("\xEF\xBD\x8B\xEF\xBD\x81"), tok.encode("ka"));
  // No byte fallback: an unseen character is unk.
  const auto unseen = tok.encode("\xE6\xBC\xA2", false);
  EXPECT_NE(std::find(unseen.begin(), unseen.end(), 2), unseen.end());
  // The temporary file was renamed away.
  for (const auto& entry : fs::directory_iterator(dir.path))
    EXPECT_EQ(entry.path().filename().string().find(".tmp"), std::string::npos) << entry.path();
}

TEST(TrainVocab, deterministic) {
  TempDir dir;
  const auto lines = generated_lines(1200);
  write_lines(dir.file("corpus.txt"), lines, 0, lines.size());
  VocabTrainingOptions opt;
  opt.vocab_size = 100;
  opt.input_sentence_size = 800;  // a sample of the 1200 lines
  auto train_to = [&](const std::string& name, const VocabTrainingOptions& o) {
    train_vocab({dir.file("corpus.txt")}, dir.file(name), o);
    return read_bytes(dir.file(name));
  };
  const std::string one = train_to("one.model", opt);
  ASSERT_FALSE(one.empty());
  EXPECT_TRUE(one == train_to("two.model", opt)) << "two trainings gave different models";
  // Overwriting an existing model is fine.
  EXPECT_TRUE(one == train_to("two.model", opt));
  // The sample matters: all sentences give another model.
  VocabTrainingOptions all = opt;
  all.input_sentence_size = 0;
  EXPECT_FALSE(one == train_to("all.model", all));
  // Two threads are deterministic too.
  VocabTrainingOptions threads = opt;
  threads.num_threads = 2;
  const std::string two_threads = train_to("t1.model", threads);
  EXPECT_TRUE(two_threads == train_to("t2.model", threads));
}

TEST(TrainVocab, from_sentences_in_memory) {
  TempDir dir;
  auto lines = generated_lines(1000);
  lines.insert(lines.begin() + 10, "");  // empty sentences are skipped
  VocabTrainingOptions opt;
  opt.vocab_size = 90;
  train_vocab_from_sentences(lines, dir.file("m.model"), opt);
  const T5Tokenizer tok = T5Tokenizer::load(dir.file("m.model"));
  EXPECT_EQ(tok.spm_size(), 90);
  EXPECT_EQ(tok.decode(tok.encode(lines[0])), lines[0]);
}

TEST(TrainVocab, errors) {
  TempDir dir;
  const auto lines = generated_lines(300);
  write_lines(dir.file("corpus.txt"), lines, 0, lines.size());
  VocabTrainingOptions opt;
  opt.vocab_size = 60;
  EXPECT_THROW_MSG(train_vocab({dir.file("missing.txt")}, dir.file("m.model"), opt),
                   "[train_vocab] cannot open input file '" + dir.file("missing.txt") + "'");
  EXPECT_THROW_MSG(train_vocab({}, dir.file("m.model"), opt), "no input files");
  EXPECT_THROW_MSG(train_vocab({dir.file("corpus.txt")}, dir.file("no_dir/m.model"), opt),
                   dir.file("no_dir/m.model"));
  write_bytes(dir.file("blank.txt"), "\n\n\r\n");
  EXPECT_THROW_MSG(train_vocab({dir.file("blank.txt")}, dir.file("m.model"), opt), "hold no text");
  EXPECT_THROW_MSG(train_vocab_from_sentences({"", ""}, dir.file("m.model"), opt),
                   "all 2 sentences are empty");
  VocabTrainingOptions big = opt;
  big.vocab_size = 50000;  // far more pieces than this corpus has
  EXPECT_THROW_MSG(train_vocab({dir.file("corpus.txt")}, dir.file("m.model"), big),
                   "SentencePiece training for " + dir.file("m.model") + " failed");
  EXPECT_FALSE(fs::exists(dir.file("m.model")));
  big.hard_vocab_limit = false;
  train_vocab({dir.file("corpus.txt")}, dir.file("m.model"), big);
  EXPECT_LT(T5Tokenizer::load(dir.file("m.model")).spm_size(), 50000);

  VocabTrainingOptions bad = opt;
  bad.vocab_size = 3;
  EXPECT_THROW_MSG(train_vocab({dir.file("corpus.txt")}, dir.file("m.model"), bad),
                   "vocab_size must exceed the 3 special pieces, got 3");
  bad = opt;
  bad.character_coverage = 1.5;
  EXPECT_THROW_MSG(train_vocab({dir.file("corpus.txt")}, dir.file("m.model"), bad),
                   "character_coverage must be in (0, 1], got 1.5");
  bad = opt;
  bad.num_threads = 0;
  EXPECT_THROW_MSG(train_vocab({dir.file("corpus.txt")}, dir.file("m.model"), bad),
                   "num_threads must be in [1, 128], got 0");
}

}  // namespace
}  // namespace sp
