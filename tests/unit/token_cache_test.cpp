// Token cache files (experiments/data/token_cache.h) and the mapped documents they give.
#include "experiments/data/token_cache.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "experiments/data/sha256.h"
#include "models/io/mapped_file.h"
#include "models/tokenizer/t5_tokenizer.h"
#include "temp_dir.h"
#include "test_util.h"

namespace sp {
namespace {
namespace fs = std::filesystem;

const std::string& spiece_path() {
  static const std::string path = std::string(SP_FIXTURES_DIR) + "/tokenizer/spiece.model";
  return path;
}

const T5Tokenizer& tokenizer() {
  static const T5Tokenizer tok = T5Tokenizer::load(spiece_path());
  return tok;
}

TokenCacheKey train_key() {
  TokenCacheKey key;
  key.split = "train";
  key.spiece_sha256 = sha256_file_hex(spiece_path());
  return key;
}

std::string documents_text(int n, const std::string& word) {
  std::string text;
  for (int i = 0; i < n; ++i)
    text += "the " + word + " number " + std::to_string(i) + std::string(i % 5, '!') + "\n";
  return text;
}

void expect_same_documents(const TokenizedDocuments& a, const TokenizedDocuments& b) {
  ASSERT_EQ(a.size(), b.size());
  ASSERT_EQ(a.num_tokens(), b.num_tokens());
  for (int64_t i = 0; i < a.size(); ++i)
    EXPECT_TRUE(std::ranges::equal(a[i], b[i])) << "document " << i;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(TokenCache, the_second_read_maps_the_ids_the_first_tokenized) {
  TempDir dir;
  const std::string text = dir.write("train.txt", documents_text(40, "cat"));
  const std::string cache = dir / "tokens";
  const TokenizedDocuments expected = tokenize_file(text, tokenizer());

  const CachedTokens first = cached_tokenize_file(text, tokenizer(), train_key(), cache);
  EXPECT_TRUE(contains(first.note, "train: tokenized")) << first.note;
  EXPECT_TRUE(contains(first.note, "cached in")) << first.note;
  const std::string path = token_cache_path(text, tokenizer(), train_key(), cache);
  EXPECT_TRUE(fs::exists(path));
  EXPECT_EQ(fs::path(path).parent_path(), fs::path(cache));
  expect_same_documents(*first.documents, expected);

  const CachedTokens second = cached_tokenize_file(text, tokenizer(), train_key(), cache);
  EXPECT_TRUE(contains(second.note, "train: token ids from " + path)) << second.note;
  expect_same_documents(*second.documents, expected);
  // The header, the offsets and the ids, nothing more.
  EXPECT_EQ(fs::file_size(path), 128 + (static_cast<uintmax_t>(expected.size()) + 1) * 8 +
                                     static_cast<uintmax_t>(expected.num_tokens()) * 4);
}

TEST(TokenCache, a_changed_text_file_is_tokenized_again) {
  TempDir dir;
  const std::string text = dir.write("train.txt", documents_text(30, "cat"));
  const std::string cache = dir / "tokens";
  cached_tokenize_file(text, tokenizer(), train_key(), cache);
  // Rewritten in place with the same size: the modification time tells.
  dir.write("train.txt", documents_text(30, "dog"));
  fs::last_write_time(text, fs::last_write_time(text) + std::chrono::seconds(5));
  const CachedTokens again = cached_tokenize_file(text, tokenizer(), train_key(), cache);
  EXPECT_TRUE(contains(again.note, "replaced: the text file changed since")) << again.note;
  expect_same_documents(*again.documents, tokenize_file(text, tokenizer()));
  const CachedTokens third = cached_tokenize_file(text, tokenizer(), train_key(), cache);
  EXPECT_TRUE(contains(third.note, "token ids from")) << third.note;
}

TEST(TokenCache, a_damaged_cache_file_is_replaced_not_trusted) {
  TempDir dir;
  const std::string text = dir.write("train.txt", documents_text(30, "cat"));
  const std::string cache = dir / "tokens";
  const std::string path = token_cache_path(text, tokenizer(), train_key(), cache);
  const TokenizedDocuments expected = tokenize_file(text, tokenizer());
  cached_tokenize_file(text, tokenizer(), train_key(), cache);
  const std::string good = read_text(path);

  struct Damage {
    std::string bytes, why;
  };
  std::string wrong_magic = good;
  wrong_magic[0] = 'X';
  std::string unordered = good;  // offsets[1] = 2^40, past every later offset
  unordered[128 + 8 + 5] = 1;
  const std::vector<Damage> damages = {
      {good.substr(0, 100), "shorter than the header"},
      {good.substr(0, good.size() - 4), "bytes, not what"},
      {wrong_magic, "not a token cache file"},
      {unordered, "out of order"},
  };
  for (const Damage& d : damages) {
    SCOPED_TRACE(d.why);
    std::ofstream(path, std::ios::binary | std::ios::trunc) << d.bytes;
    const CachedTokens got = cached_tokenize_file(text, tokenizer(), train_key(), cache);
    EXPECT_TRUE(contains(got.note, "(replaced: ")) << got.note;
    EXPECT_TRUE(contains(got.note, d.why)) << got.note;
    expect_same_documents(*got.documents, expected);
    EXPECT_EQ(read_text(path), good);
  }
}

TEST(TokenCache, what_decides_the_ids_names_the_file) {
  TempDir dir;
  const std::string text = dir.write("train.txt", documents_text(5, "cat"));
  const std::string other_text = dir.write("other.txt", documents_text(5, "cat"));
  const std::string cache = dir / "tokens";
  const std::string base = token_cache_path(text, tokenizer(), train_key(), cache);
  TokenCacheKey other_model = train_key();
  other_model.spiece_sha256 = sha256_hex("another model");
  TokenCacheKey jsonl = train_key();
  jsonl.reader.format = DocumentFormat::jsonl;
  TokenCacheKey validation = train_key();
  validation.split = "validation";
  const T5Tokenizer fewer_sentinels = T5Tokenizer::load(spiece_path(), {.extra_ids = 10});
  const std::vector<std::string> others = {
      token_cache_path(other_text, tokenizer(), train_key(), cache),
      token_cache_path(text, tokenizer(), other_model, cache),
      token_cache_path(text, tokenizer(), jsonl, cache),
      token_cache_path(text, fewer_sentinels, train_key(), cache),
  };
  for (const std::string& other : others) EXPECT_NE(other, base);
  EXPECT_TRUE(fs::path(token_cache_path(text, tokenizer(), validation, cache))
                  .filename()
                  .string()
                  .starts_with("validation-"));
  EXPECT_EQ(token_cache_path(text, tokenizer(), train_key(), cache), base);
}

TEST(TokenCache, a_cache_that_cannot_be_written_keeps_the_ids_in_memory) {
  TempDir dir;
  const std::string text = dir.write("train.txt", documents_text(12, "cat"));
  const std::string not_a_dir = dir.write("file", "x");  // a file where the folder would go
  const CachedTokens got =
      cached_tokenize_file(text, tokenizer(), train_key(), not_a_dir + "/tokens");
  EXPECT_TRUE(contains(got.note, "; not cached: ")) << got.note;
  expect_same_documents(*got.documents, tokenize_file(text, tokenizer()));
}

TEST(TokenCache, a_missing_text_file_is_the_readers_error) {
  TempDir dir;
  EXPECT_THROW_MSG(cached_tokenize_file(dir / "none.txt", tokenizer(), train_key(), dir / "t"),
                   "cannot open");
}

TEST(TokenCache, tokenize_corpus_caches_both_splits) {
  TempDir dir;
  const std::string train = dir.write("train.txt", documents_text(20, "cat"));
  const std::string validation = dir.write("validation.txt", documents_text(6, "dog"));
  const TokenizedCorpus plain = tokenize_corpus(spiece_path(), train, validation);
  EXPECT_TRUE(plain.notes.empty());
  for (const char* expected_note : {"tokenized", "token ids from"}) {
    const TokenizedCorpus cached = tokenize_corpus(spiece_path(), train, validation, dir / "tok");
    ASSERT_EQ(cached.notes.size(), 2u);
    EXPECT_TRUE(cached.notes[0].starts_with(std::string("train: ") + expected_note))
        << cached.notes[0];
    EXPECT_TRUE(cached.notes[1].starts_with(std::string("validation: ") + expected_note))
        << cached.notes[1];
    expect_same_documents(*cached.train, *plain.train);
    expect_same_documents(*cached.validation, *plain.validation);
    EXPECT_EQ(cached.vocab_size, plain.vocab_size);
  }
}

TEST(TokenizedDocuments, views_check_their_offsets_and_cannot_grow) {
  auto owner = std::make_shared<int>(0);
  const std::vector<int32_t> ids = {5, 6, 7};
  const std::vector<int64_t> offsets = {0, 1, 3};
  TokenizedDocuments view = TokenizedDocuments::view(ids, offsets, owner);
  EXPECT_EQ(view.size(), 2);
  EXPECT_EQ(view.length(1), 2);
  EXPECT_EQ(view[1][1], 7);
  const std::vector<int32_t> more = {1};
  EXPECT_THROW_MSG(view.add(more), "cannot be added to");
  const std::vector<int64_t> short_offsets = {0, 1};
  EXPECT_THROW_MSG(TokenizedDocuments::view(ids, short_offsets, owner), "offsets must run");
  EXPECT_THROW_MSG(TokenizedDocuments::view(ids, offsets, nullptr), "owner");
}

TEST(MappedFile, maps_bytes_and_names_the_file_it_cannot_open) {
  TempDir dir;
  const auto file = MappedFile::open(dir.write("a.bin", "abc"), "[test]");
  ASSERT_EQ(file->size(), 3u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(file->data()), 3), "abc");
  EXPECT_EQ(MappedFile::open(dir.write("empty.bin", ""), "[test]")->size(), 0u);
  EXPECT_THROW_MSG(MappedFile::open(dir / "none.bin", "[test]"), "[test] ");
  EXPECT_THROW_MSG(MappedFile::open(dir / "none.bin", "[test]"), "none.bin: cannot open");
  EXPECT_THROW_MSG(MappedFile::open(dir.path.string(), "[test]"), "not a regular file");
}

}  // namespace
}  // namespace sp
