#pragma once
// What the file-backed tasks share: finding a split's file, reading its records, reading
// typed fields with errors that name FILE:LINE, and T5's "key: value" joining.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "experiments/inference/jsonl.h"

namespace sp {

// The file of split under dir: split_files[split] when listed (e.g. "validation" ->
// "val.jsonl"), else "<split><extension>" when that file exists (e.g. "train32.jsonl").
// Throws naming the task, the path tried and the known splits when the file is missing,
// and when split is not a name is_file_name_safe() accepts ("../x").
std::string split_path(const std::string& task, const std::string& dir, const std::string& split,
                       const std::map<std::string, std::string>& split_files,
                       const std::string& extension);

// Every record of the jsonl file at path (errors name the path and line).
std::vector<JsonlRecord> read_jsonl_file(const std::string& path);

// Whether name may become part of a file name, as a task's or a split's name does (the
// runner writes <task>-<split>.jsonl): letters, digits, '.', '_', '-' or '+', and not "",
// "." or "..".
bool is_file_name_safe(const std::string& name);
// is_file_name_safe's rule in words, for the messages that refuse a name.
inline constexpr const char* kFileNameRule =
    "letters, digits, '.', '_', '-' or '+', and not '.' or '..'";

// Whether a split's records may lack their labels: only a test split ("test", or a name
// starting with "test"), as SuperGLUE's and GLUE's test files have none. Every other split
// is trained on or scored, so a record without its label there is an error.
bool split_may_be_unlabelled(const std::string& split);
// Whether parent (r.value or an object inside it, at path) has its label key: false when
// it has none in a split that may be unlabelled; elsewhere a missing label fails
// "<file>:<line>: expected "<path><key>" (split '<split>' needs labels; ...)".
bool has_label(const JsonlRecord& r, const std::string& split, const nlohmann::json& parent,
               const std::string& path, const char* key);

// T5's glue preprocessor: "k1: v1 k2: v2 ...", with "<task> " in front when prefix is set.
std::string join_fields(bool prefix, const std::string& task,
                        const std::vector<std::pair<std::string, std::string>>& fields);

// Typed fields of a record; each fails with "<file>:<line>: ..." naming the key.
int64_t int_field(const JsonlRecord& r, const char* key);
// A boolean label; JSON true/false or the integers 1/0.
bool bool_field(const JsonlRecord& r, const char* key);
// parent[key] of the expected kind, for nested records (MultiRC, ReCoRD, WSC); path is
// where parent sits, for the message: "passage.questions[2].".
enum class JsonKind { kString, kInteger, kBool, kArray, kObject };
const nlohmann::json& child(const JsonlRecord& r, const nlohmann::json& parent,
                            std::string_view path, const char* key, JsonKind kind);

// parent[key] as a non-negative integer (a dataset's idx), as text for an example id.
std::string idx_text(const JsonlRecord& r, const nlohmann::json& parent, const std::string& path,
                     const char* key);

// "<task>-<split>-<idx>": the stable example id.
std::string example_id(const std::string& task, const std::string& split, const std::string& idx);

// Whether path names an existing regular file.
bool file_exists(const std::string& path);

}  // namespace sp
