#include "experiments/data/tokenized_documents.h"

#include <exception>
#include <filesystem>
#include <limits>
#include <optional>
#include <system_error>

#include "models/tokenizer/t5_tokenizer.h"
#include "tensor/error.h"

namespace sp {

void TokenizedDocuments::add(std::span<const int32_t> document) {
  tokens_.insert(tokens_.end(), document.begin(), document.end());
  offsets_.push_back(static_cast<int64_t>(tokens_.size()));
}

void TokenizedDocuments::append(const TokenizedDocuments& other) {
  for (int64_t i = 0; i < other.size(); ++i) add(other[i]);
}

void TokenizedDocuments::reserve(int64_t tokens, int64_t documents) {
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
                                const std::string& validation_file) {
  const T5Tokenizer tokenizer = T5Tokenizer::load(spiece_model);
  TokenizedCorpus c;
  c.train = std::make_shared<const TokenizedDocuments>(tokenize_file(train_file, tokenizer));
  c.validation =
      std::make_shared<const TokenizedDocuments>(tokenize_file(validation_file, tokenizer));
  c.vocab = special_tokens_of(tokenizer);
  c.vocab_size = tokenizer.vocab_size();
  return c;
}

}  // namespace sp
