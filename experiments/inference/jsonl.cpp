#include "experiments/inference/jsonl.h"

#include <filesystem>
#include <limits>
#include <set>

#include "tensor/error.h"

namespace sp {
namespace {

using ParseEvent = nlohmann::json::parse_event_t;

// Parses one line; std::nullopt when it is not valid JSON. duplicate is set when an object
// repeats a key, which nlohmann::json would resolve silently, the last value winning: each
// open object counts the keys the parser saw, and its size must equal that count at its end.
std::optional<nlohmann::json> parse_line(const std::string& text, bool& duplicate) {
  std::vector<size_t> keys_seen;  // one count per open object, innermost last
  duplicate = false;
  nlohmann::json value = nlohmann::json::parse(
      text,
      [&](int /*depth*/, ParseEvent event, nlohmann::json& parsed) {
        if (event == ParseEvent::object_start) {
          keys_seen.push_back(0);
        } else if (event == ParseEvent::key) {
          ++keys_seen.back();
        } else if (event == ParseEvent::object_end) {
          duplicate = duplicate || keys_seen.back() != parsed.size();
          keys_seen.pop_back();
        }
        return true;
      },
      /*allow_exceptions=*/false);
  if (value.is_discarded()) return std::nullopt;
  return value;
}

// The first key that some object of text (valid JSON) gives twice: the slow search, run only
// once parse_line has found that there is one.
std::string first_duplicate_key(const std::string& text) {
  std::vector<std::set<std::string>> open;
  std::string duplicate;
  const nlohmann::json unused = nlohmann::json::parse(
      text,
      [&](int /*depth*/, ParseEvent event, nlohmann::json& parsed) {
        if (event == ParseEvent::object_start) {
          open.emplace_back();
        } else if (event == ParseEvent::object_end) {
          open.pop_back();
        } else if (event == ParseEvent::key && duplicate.empty() &&
                   !open.back().insert(parsed.get<std::string>()).second) {
          duplicate = parsed.get<std::string>();
        }
        return true;
      },
      /*allow_exceptions=*/false);
  return duplicate;
}

}  // namespace

void JsonlRecord::fail(const std::string& message) const {
  sp::fail(str_cat(source, ":", line, ": ", message));
}

const char* json_kind(const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::null: return "null";
    case nlohmann::json::value_t::object: return "an object";
    case nlohmann::json::value_t::array: return "an array";
    case nlohmann::json::value_t::string: return "a string";
    case nlohmann::json::value_t::boolean: return "a boolean";
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned: return "an integer";
    case nlohmann::json::value_t::number_float: return "a number";
    default: return "an unsupported value";
  }
}

std::string JsonlRecord::string_field(const char* key) const {
  auto it = value.find(key);
  if (it == value.end()) fail(str_cat("expected \"", key, "\""));
  if (!it->is_string())
    fail(str_cat("expected \"", key, "\" to be a string, got ", json_kind(*it)));
  return it->get<std::string>();
}

std::vector<int64_t> JsonlRecord::ids_field(const char* key, int64_t vocab_size,
                                            int64_t min_id) const {
  auto it = value.find(key);
  if (it == value.end()) fail(str_cat("expected \"", key, "\""));
  if (!it->is_array())
    fail(str_cat("expected \"", key, "\" to be an array of token ids, got ", json_kind(*it)));
  if (it->empty()) fail(str_cat("expected \"", key, "\" to hold at least one token id"));
  std::vector<int64_t> ids;
  ids.reserve(it->size());
  for (size_t i = 0; i < it->size(); ++i) {
    const nlohmann::json& e = (*it)[i];
    // Integral floats such as 3.0 are rejected too: ids are integers.
    if (!e.is_number_integer())
      fail(
          str_cat("expected \"", key, "\"[", i, "] to be an integer token id, got ", json_kind(e)));
    if (e.is_number_unsigned() &&
        e.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail(str_cat("\"", key, "\"[", i, "] is ", e.dump(), ", outside the vocabulary [0, ",
                   vocab_size, ")"));
    const int64_t id = e.get<int64_t>();
    const bool ignored = min_id < 0 && id == min_id;
    if (!ignored && (id < 0 || id >= vocab_size))
      fail(str_cat("\"", key, "\"[", i, "] is ", id, ", outside the vocabulary [0, ", vocab_size,
                   ")", min_id < 0 ? str_cat(" (or ", min_id, " to ignore it)") : ""));
    ids.push_back(id);
  }
  return ids;
}

std::optional<JsonlRecord> JsonlReader::next() {
  std::string text;
  while (std::getline(in_, text)) {
    ++line_;
    if (text.find_first_not_of(" \t\r\n\f\v") == std::string::npos) continue;
    JsonlRecord r;
    r.source = source_;
    r.line = line_;
    bool duplicate = false;
    std::optional<nlohmann::json> value = parse_line(text, duplicate);
    if (!value) r.fail("expected a JSON object, got text that is not valid JSON");
    r.value = std::move(*value);
    if (!r.value.is_object()) r.fail(str_cat("expected a JSON object, got ", json_kind(r.value)));
    if (duplicate)
      r.fail(str_cat("key \"", first_duplicate_key(text),
                     "\" is given twice in one object (which value is meant?)"));
    return r;
  }
  if (in_.bad()) {
    // A directory opens as a stream on Linux and fails on the first read.
    std::error_code ec;
    SP_CHECK(!std::filesystem::is_directory(source_, ec), "[jsonl] ", source_,
             ": is a directory, not a JSON-lines file");
    fail(str_cat("[jsonl] ", source_, ": read error after line ", line_));
  }
  return std::nullopt;
}

std::vector<JsonlRecord> read_jsonl(std::istream& in, const std::string& source) {
  JsonlReader reader(in, source);
  std::vector<JsonlRecord> out;
  while (auto r = reader.next()) out.push_back(std::move(*r));
  return out;
}

}  // namespace sp
