#include "experiments/data/tokenized_documents.h"

#include <exception>
#include <filesystem>
#include <limits>
#include <optional>
#include <system_error>

#include "experiments/data/sha256.h"
#include "experiments/data/token_cache.h"
#include "models/tokenizer/t5_tokenizer.h"
#include "tensor/error.h"

namespace sp {

TokenizedDocuments TokenizedDocuments::view(std::span<const int32_t> tokens,
                                            std::span<const int64_t> offsets,
                                            std::shared_ptr<const void> owner) {
  SP_CHECK(owner != nullptr, "[data] TokenizedDocuments::view needs the owner of its ids");
  SP_CHECK(!offsets.empty() && offsets.front() == 0 &&
               offsets.back() == static_cast<int64_t>(tokens.size()),
           "[data] TokenizedDocuments::view: offsets must run from 0 to the ", tokens.size(),
           " ids");
  TokenizedDocuments d;
  d.offsets_.clear();
  d.tokens_view_ = tokens;
  d.offsets_view_ = offsets;
  d.owner_ = std::move(owner);
  return d;
}

void TokenizedDocuments::add(std::span<const int32_t> document) {
  SP_CHECK(!owner_, "[data] documents viewed from a cache cannot be added to");
  tokens_.insert(tokens_.end(), document.begin(), document.end());
  offsets_.push_back(static_cast<int64_t>(tokens_.size()));
}

void TokenizedDocuments::append(const TokenizedDocuments& other) {
  for (int64_t i = 0; i < other.size(); ++i) add(other[i]);
}

void TokenizedDocuments::reserve(int64_t tokens, int64_t documents) {
  if (owner_) return;
  tokens_.reserve(static_cast<size_t>(tokens));
  offsets_.reserve(static_cast<size_t>(documents) + 1);
}

TokenizedDocuments tokenize_documents(const std::vector<std::string>& documents,
                                      const T5Tokenizer& tokenizer) {
  SP_CHECK(tokenizer.vocab_size() <= std::numeric_limits<int32_t>::max(),
           "[data] vocabulary too large for int32 ids: ", tokenizer.vocab_size());
  const auto n = static_cast<int64_t>(documents.size());
  std::vector<std::vector<int32_t>> ids(documents.size());
  // An exception must not leave an OpenMP region (that terminates the process): the first
  // one is kept and thrown after the loop.
  std::exception_ptr error;
#pragma omp parallel for schedule(dynamic, 256)
  for (int64_t i = 0; i < n; ++i) {
    try {
      const std::vector<int64_t> wide = tokenizer.encode(documents[static_cast<size_t>(i)], false);
      ids[static_cast<size_t>(i)].assign(wide.begin(), wide.end());
    } catch (...) {
#pragma omp critical(sp_tokenize_documents_error)
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
  TokenizedDocuments out;
  for (const auto& d : ids) out.add(d);
  return out;
}

TokenizedDocuments tokenize_file(const std::string& path, const T5Tokenizer& tokenizer,
                                 const DocumentReaderOptions& options, size_t chunk_bytes) {
  DocumentReader reader(path, options);
  TokenizedDocuments out;
  // SentencePiece's English pieces average about 4 bytes of text: room for that many ids
  // up front, so the array is seldom regrown (a regrowth holds it twice for a moment).
  std::error_code ec;
  const auto file_bytes = static_cast<int64_t>(std::filesystem::file_size(path, ec));
  if (!ec) out.reserve(file_bytes / 4, 0);
  std::vector<std::string> chunk;
  size_t bytes = 0;
  for (;;) {
    std::optional<std::string> doc = reader.next();
    if (doc) {
      bytes += doc->size();
      chunk.push_back(std::move(*doc));
    }
    if (!doc || bytes >= chunk_bytes) {
      out.append(tokenize_documents(chunk, tokenizer));
      chunk.clear();
      bytes = 0;
    }
    if (!doc) return out;
  }
}

SpecialTokens special_tokens_of(const T5Tokenizer& tokenizer) {
  SpecialTokens s;
  s.pad_id = static_cast<int32_t>(tokenizer.pad_id());
  s.eos_id = static_cast<int32_t>(tokenizer.eos_id());
  s.spm_size = static_cast<int32_t>(tokenizer.spm_size());
  s.num_sentinels = static_cast<int32_t>(tokenizer.extra_ids());
  return s;
}

TokenizedCorpus tokenize_corpus(const std::string& spiece_model, const std::string& train_file,
                                const std::string& validation_file, const std::string& cache_dir) {
  const T5Tokenizer tokenizer = T5Tokenizer::load(spiece_model);
  TokenizedCorpus c;
  const std::string spiece_sha256 = cache_dir.empty() ? "" : sha256_file_hex(spiece_model);
  auto split = [&](const std::string& file, const std::string& name) {
    if (cache_dir.empty())
      return std::make_shared<const TokenizedDocuments>(tokenize_file(file, tokenizer));
    TokenCacheKey key;
    key.split = name;
    key.spiece_sha256 = spiece_sha256;
    CachedTokens cached = cached_tokenize_file(file, tokenizer, key, cache_dir);
    c.notes.push_back(std::move(cached.note));
    return cached.documents;
  };
  c.train = split(train_file, "train");
  c.validation = split(validation_file, "validation");
  c.vocab = special_tokens_of(tokenizer);
  c.vocab_size = tokenizer.vocab_size();
  return c;
}

}  // namespace sp
