#pragma once
// Token cache files: a corpus split's ids kept on disk, so the stages that read one corpus
// with one vocabulary tokenize it once. fig3d's fifteen LM adaptations share a C4 split of
// about 45 GB, which takes minutes of every core to tokenize (sp_bench tokenize/*), and a
// resumed stage starts at once. The ids are memory-mapped, not read into the process: the
// page cache holds one copy for every stage and process that uses them.
//
// A cache file, <cache_dir>/<split>-<key>.tokens, is named by a hash of what decides the ids
// (the text file's absolute path, the spiece.model's SHA-256, the tokenizer's sentinels and
// spacing, the document format) and records the text file's size and modification time: a
// text file changed since (a corpus rebuilt in place) is tokenized again and its cache
// replaced. Files are written atomically (a temporary file, then rename), so a stopped write
// leaves no partial cache and two writers of one file are harmless.
//
// Layout, little-endian: a 128-byte header (magic "SPTOKENS", format version, documents,
// tokens, the text file's size and mtime, the vocabulary size, the key), then the documents
// + 1 offsets as int64, then the ids as int32.
#include <memory>
#include <string>

#include "experiments/data/document_reader.h"
#include "experiments/data/tokenized_documents.h"

namespace sp {

class T5Tokenizer;

struct TokenCacheKey {
  std::string split;          // names the file: "train", "validation"
  std::string spiece_sha256;  // of the spiece.model the tokenizer was loaded from
  DocumentReaderOptions reader;
};

struct CachedTokens {
  std::shared_ptr<const TokenizedDocuments> documents;
  // One line for the log: the cache read, made, or (when it cannot be written) skipped.
  std::string note;
};

// text_file's documents tokenized as tokenize_file does, through the cache in cache_dir
// (created when missing). A cache that cannot be written (a read-only corpus, a full disk)
// costs nothing but the note: the ids are then held in memory.
CachedTokens cached_tokenize_file(const std::string& text_file, const T5Tokenizer& tokenizer,
                                  const TokenCacheKey& key, const std::string& cache_dir);

// The cache file's path for text_file and key (what cached_tokenize_file reads and writes).
std::string token_cache_path(const std::string& text_file, const T5Tokenizer& tokenizer,
                             const TokenCacheKey& key, const std::string& cache_dir);

}  // namespace sp
