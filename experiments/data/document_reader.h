#pragma once
// Streaming document readers: plain text (one document per line, or paragraphs separated
// by blank lines) and JSON lines (one named string field per line). A reader's position
// is a few integers, so a data pipeline that stops can seek back to where it was.
#include <cstdint>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace sp {

enum class DocumentFormat {
  lines,       // every non-blank line is a document
  paragraphs,  // runs of non-blank lines, separated by blank lines; lines joined with '\n'
  jsonl,       // every non-blank line is a JSON object; the document is one string field
};

// "lines" | "paragraphs" | "jsonl"; throws naming the accepted values.
DocumentFormat parse_document_format(const std::string& name);
const char* document_format_name(DocumentFormat format);

struct DocumentReaderOptions {
  DocumentFormat format = DocumentFormat::lines;
  std::string jsonl_field = "text";  // the field a jsonl line's document is read from
};

// Where the next document starts.
struct DocumentPosition {
  int64_t documents = 0;     // documents returned before this one
  uint64_t byte_offset = 0;  // in the file
  int64_t line = 0;          // 0-based line number at byte_offset (for error messages)
  bool operator==(const DocumentPosition&) const = default;
};
void to_json(nlohmann::json& j, const DocumentPosition& p);
void from_json(const nlohmann::json& j, DocumentPosition& p);

class DocumentReader {
 public:
  // Throws sp::Error "[data] cannot open <path>" when the file cannot be read.
  DocumentReader(std::string path, DocumentReaderOptions options = {});

  // The next document, std::nullopt at the end of the file. Errors name the file and the
  // 1-based line: "data.jsonl:3: field \"text\" is missing", "a.txt:2: not valid UTF-8
  // (byte 0xE9 at column 4); ..." (every format must be UTF-8 text).
  std::optional<std::string> next();
  DocumentPosition position() const { return pos_; }
  // Continues from a position that position() returned for the same file; throws when it
  // lies past the end of the file.
  void seek(const DocumentPosition& position);
  const std::string& path() const { return path_; }

 private:
  // The next line without its '\n' (and '\r'), advancing pos_; nullopt at the end.
  std::optional<std::string> read_line();

  std::string path_;
  DocumentReaderOptions options_;
  std::ifstream in_;
  DocumentPosition pos_;
};

// Every document of a file.
std::vector<std::string> read_documents(const std::string& path,
                                        const DocumentReaderOptions& options = {});

// Runs of whitespace (Unicode, as Python's str.isspace) become one ' '; both ends stripped.
std::string normalize_whitespace(std::string_view text);

}  // namespace sp
