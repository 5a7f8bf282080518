#pragma once
// JSON-lines input for the command-line tools: one JSON object per line, blank lines
// skipped. Every error names the source, the 1-based line and what was expected, in the
// form tools and people grep for:
//   data.jsonl:3: expected "input_ids" or "inputs"
#include <cstdint>
#include <istream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace sp {

// One parsed line: the object and where it came from.
struct JsonlRecord {
  std::string source;  // the file name as the user gave it
  int64_t line = 0;    // 1-based
  nlohmann::json value;

  // Throws sp::Error "<source>:<line>: <message>".
  [[noreturn]] void fail(const std::string& message) const;
  bool has(const char* key) const { return value.contains(key); }
  // value[key] as a string; fails when it is missing or not a string.
  std::string string_field(const char* key) const;
  // value[key] as token ids, each in [min_id, vocab_size) (min_id = -100 lets labels carry
  // the ignore index); fails when missing, not an array of integers, out of range or empty.
  std::vector<int64_t> ids_field(const char* key, int64_t vocab_size, int64_t min_id = 0) const;
};

// Reads the next non-blank line of in; std::nullopt at the end. Throws on a line that is
// not a JSON object or whose objects repeat a key (nlohmann::json would keep the last value
// silently), and on a read error (naming a directory given as the file as such).
class JsonlReader {
 public:
  JsonlReader(std::istream& in, std::string source) : in_(in), source_(std::move(source)) {}
  std::optional<JsonlRecord> next();
  const std::string& source() const { return source_; }

 private:
  std::istream& in_;
  std::string source_;
  int64_t line_ = 0;
};

// Every record of in (validated as objects).
std::vector<JsonlRecord> read_jsonl(std::istream& in, const std::string& source);

// JSON's name for the kind of a value ("string", "array", ...), for error messages.
const char* json_kind(const nlohmann::json& v);

}  // namespace sp
