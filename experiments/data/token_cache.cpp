#include "experiments/data/token_cache.h"

#include <bit>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <optional>
#include <system_error>

#include "experiments/data/sha256.h"
#include "models/io/atomic_file.h"
#include "models/io/mapped_file.h"
#include "models/tokenizer/t5_tokenizer.h"
#include "tensor/error.h"

namespace sp {
namespace {

namespace fs = std::filesystem;

static_assert(std::endian::native == std::endian::little, "token cache files are little-endian");

constexpr char kMagic[8] = {'S', 'P', 'T', 'O', 'K', 'E', 'N', 'S'};
constexpr uint32_t kFormatVersion = 1;

struct Header {
  char magic[8];
  uint32_t version;
  uint32_t reserved;
  uint64_t documents;
  uint64_t tokens;
  uint64_t text_bytes;
  int64_t text_mtime_ns;
  uint64_t vocab_size;
  char key[64];  // lowercase hex SHA-256
  char padding[8];
};
static_assert(sizeof(Header) == 128);

// What says the text file is the one the cache was made from.
struct TextIdentity {
  uint64_t bytes = 0;
  int64_t mtime_ns = 0;
};

std::optional<TextIdentity> text_identity(const std::string& path) {
  std::error_code ec;
  const uintmax_t bytes = fs::file_size(path, ec);
  if (ec) return std::nullopt;
  const fs::file_time_type mtime = fs::last_write_time(path, ec);
  if (ec) return std::nullopt;
  return TextIdentity{
      static_cast<uint64_t>(bytes),
      std::chrono::duration_cast<std::chrono::nanoseconds>(mtime.time_since_epoch()).count()};
}

std::string key_hex(const std::string& text_file, const T5Tokenizer& tokenizer,
                    const TokenCacheKey& key) {
  return sha256_hex(str_cat("softprompt token cache ", kFormatVersion, "\n",
                            fs::absolute(text_file).lexically_normal().string(), "\n",
                            key.spiece_sha256, "\n", tokenizer.extra_ids(), "\n",
                            static_cast<int>(tokenizer.sentinel_spacing()), "\n",
                            document_format_name(key.reader.format), "\n", key.reader.jsonl_field));
}

std::string cache_file(const std::string& cache_dir, const std::string& split,
                       const std::string& key_hex) {
  return (fs::path(cache_dir) / (split + "-" + key_hex.substr(0, 16) + ".tokens")).string();
}

// The cached documents, or nullptr: no file yet (*why left empty), or a file that does not
// serve (*why says why).
std::shared_ptr<const TokenizedDocuments> open_cache(const std::string& path,
                                                     const std::string& key,
                                                     const TextIdentity& text, int64_t vocab_size,
                                                     std::string* why) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return nullptr;
  const std::shared_ptr<MappedFile> file = MappedFile::open(path, "[data] token cache");
  Header h{};
  if (file->size() < sizeof(Header)) {
    *why = str_cat(file->size(), " bytes, shorter than the header");
    return nullptr;
  }
  std::memcpy(&h, file->data(), sizeof(Header));
  if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0 || h.version != kFormatVersion) {
    *why = "not a token cache file of format version " + std::to_string(kFormatVersion);
    return nullptr;
  }
  if (std::string_view(h.key, sizeof h.key) != key) {
    *why = "made for another text file or tokenizer";
    return nullptr;
  }
  if (h.text_bytes != text.bytes || h.text_mtime_ns != text.mtime_ns) {
    *why = "the text file changed since";
    return nullptr;
  }
  if (h.vocab_size != static_cast<uint64_t>(vocab_size)) {
    *why = str_cat("made for a vocabulary of ", h.vocab_size, ", not ", vocab_size);
    return nullptr;
  }
  const uint64_t body = file->size() - sizeof(Header);
  if (h.documents >= body / 8 || h.tokens > body / 4 ||
      (h.documents + 1) * 8 + h.tokens * 4 != body) {
    *why = str_cat(file->size(), " bytes, not what ", h.documents, " documents of ", h.tokens,
                   " tokens take");
    return nullptr;
  }
  const auto* offsets = reinterpret_cast<const int64_t*>(file->data() + sizeof(Header));
  const auto* tokens = reinterpret_cast<const int32_t*>(offsets + h.documents + 1);
  bool ordered = offsets[0] == 0 && offsets[h.documents] == static_cast<int64_t>(h.tokens);
  for (uint64_t i = 0; ordered && i < h.documents; ++i) ordered = offsets[i] <= offsets[i + 1];
  if (!ordered) {
    *why = "its document offsets are out of order";
    return nullptr;
  }
  return std::make_shared<const TokenizedDocuments>(
      TokenizedDocuments::view({tokens, static_cast<size_t>(h.tokens)},
                               {offsets, static_cast<size_t>(h.documents + 1)}, file));
}

void write_cache(const std::string& path, const TokenizedDocuments& docs, const std::string& key,
                 const TextIdentity& text, int64_t vocab_size) {
  Header h{};
  std::memcpy(h.magic, kMagic, sizeof kMagic);
  h.version = kFormatVersion;
  h.documents = static_cast<uint64_t>(docs.size());
  h.tokens = static_cast<uint64_t>(docs.num_tokens());
  h.text_bytes = text.bytes;
  h.text_mtime_ns = text.mtime_ns;
  h.vocab_size = static_cast<uint64_t>(vocab_size);
  std::memcpy(h.key, key.data(), sizeof h.key);
  fs::create_directories(fs::path(path).parent_path());
  AtomicFile out(path, "[data] token cache");
  out.write(&h, sizeof h);
  out.write(docs.offsets().data(), docs.offsets().size_bytes());
  out.write(docs.tokens().data(), docs.tokens().size_bytes());
  out.commit();
}

}  // namespace

std::string token_cache_path(const std::string& text_file, const T5Tokenizer& tokenizer,
                             const TokenCacheKey& key, const std::string& cache_dir) {
  return cache_file(cache_dir, key.split, key_hex(text_file, tokenizer, key));
}

CachedTokens cached_tokenize_file(const std::string& text_file, const T5Tokenizer& tokenizer,
                                  const TokenCacheKey& key, const std::string& cache_dir) {
  const std::string hex = key_hex(text_file, tokenizer, key);
  const std::string path = cache_file(cache_dir, key.split, hex);
  const std::optional<TextIdentity> text = text_identity(text_file);
  CachedTokens out;
  std::string why;  // why a cache file there does not serve; empty: there is none
  if (text) {
    try {
      out.documents = open_cache(path, hex, *text, tokenizer.vocab_size(), &why);
    } catch (const Error& e) {
      why = e.what();
    }
    if (out.documents) {
      out.note = str_cat(key.split, ": token ids from ", path, " (", out.documents->size(),
                         " documents, ", out.documents->num_tokens(), " tokens)");
      return out;
    }
  }
  const auto t0 = std::chrono::steady_clock::now();
  auto docs = std::make_shared<TokenizedDocuments>(tokenize_file(text_file, tokenizer, key.reader));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  out.note = str_cat(key.split, ": tokenized ", text_file, " in ", std::round(seconds * 10) / 10,
                     " s (", docs->size(), " documents, ", docs->num_tokens(), " tokens)");
  out.documents = docs;
  if (!text) return out;  // tokenize_file read it, yet it cannot be stat'ed: keep it in memory
  try {
    write_cache(path, *docs, hex, *text, tokenizer.vocab_size());
    std::string reopen_why;
    if (auto mapped = open_cache(path, hex, *text, tokenizer.vocab_size(), &reopen_why)) {
      out.documents = std::move(mapped);  // the page cache holds them now, not the process
      out.note += str_cat(", cached in ", path, why.empty() ? "" : " (replaced: " + why + ")");
    } else {
      out.note += str_cat("; the cache written to ", path, " does not read back",
                          reopen_why.empty() ? "" : ": " + reopen_why);
    }
  } catch (const std::exception& e) {
    out.note += str_cat("; not cached: ", e.what());
  }
  return out;
}

}  // namespace sp
