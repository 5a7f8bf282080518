#include "experiments/tasks/task_io.h"

#include <filesystem>
#include <fstream>

#include "tensor/error.h"

namespace sp {

bool file_exists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_regular_file(path, ec);
}

std::string split_path(const std::string& task, const std::string& dir, const std::string& split,
                       const std::map<std::string, std::string>& split_files,
                       const std::string& extension) {
  if (dir.empty()) {
    std::string files;
    for (const auto& [name, f] : split_files) files += str_cat(files.empty() ? "" : ", ", f);
    fail(str_cat("[", task, "] no data directory given (the folder with ", files, ")"));
  }
  SP_CHECK(is_file_name_safe(split), "[", task, "] split '", split,
           "' is not a split name: ", kFileNameRule, " (it names files)");
  auto it = split_files.find(split);
  const std::string file = it != split_files.end() ? it->second : split + extension;
  const std::string path = (std::filesystem::path(dir) / file).string();
  if (!file_exists(path)) {
    std::error_code ec;
    SP_CHECK(!std::filesystem::is_directory(path, ec), "[", task, "] split '", split, "': ", path,
             " is a directory, not a file");
    std::string known;
    for (const auto& [name, f] : split_files) known += str_cat(known.empty() ? "" : ", ", name);
    fail(str_cat("[", task, "] split '", split, "': no file ", path, " (splits: ", known,
                 ", or any NAME with a file NAME", extension, " in ", dir, ")"));
  }
  return path;
}

std::vector<JsonlRecord> read_jsonl_file(const std::string& path) {
  std::ifstream in(path);
  SP_CHECK(in.good(), "[tasks] cannot open ", path);
  return read_jsonl(in, path);
}

bool is_file_name_safe(const std::string& name) {
  if (name.empty() || name == "." || name == "..") return false;
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-' || c == '+';
    if (!ok) return false;
  }
  return true;
}

bool split_may_be_unlabelled(const std::string& split) { return split.starts_with("test"); }

bool has_label(const JsonlRecord& r, const std::string& split, const nlohmann::json& parent,
               const std::string& path, const char* key) {
  if (parent.contains(key)) return true;
  if (split_may_be_unlabelled(split)) return false;
  r.fail(str_cat("expected \"", path, key, "\" (split '", split,
                 "' needs labels; only a test split may leave them out)"));
}

std::string join_fields(bool prefix, const std::string& task,
                        const std::vector<std::pair<std::string, std::string>>& fields) {
  std::string out = prefix ? task : std::string();
  for (const auto& [key, value] : fields) {
    if (!out.empty()) out.push_back(' ');
    out += key;
    out += ": ";
    out += value;
  }
  return out;
}

int64_t int_field(const JsonlRecord& r, const char* key) {
  auto it = r.value.find(key);
  if (it == r.value.end()) r.fail(str_cat("expected \"", key, "\""));
  if (!it->is_number_integer())
    r.fail(str_cat("expected \"", key, "\" to be an integer, got ", json_kind(*it)));
  return it->get<int64_t>();
}

bool bool_field(const JsonlRecord& r, const char* key) {
  auto it = r.value.find(key);
  if (it == r.value.end()) r.fail(str_cat("expected \"", key, "\""));
  if (it->is_boolean()) return it->get<bool>();
  if (it->is_number_integer() && (it->get<int64_t>() == 0 || it->get<int64_t>() == 1))
    return it->get<int64_t>() == 1;
  r.fail(str_cat("expected \"", key, "\" to be true or false, got ", it->dump()));
}

const nlohmann::json& child(const JsonlRecord& r, const nlohmann::json& parent,
                            std::string_view path, const char* key, JsonKind kind) {
  auto it = parent.find(key);
  if (it == parent.end()) r.fail(str_cat("expected \"", path, key, "\""));
  bool ok = false;
  const char* expected = "";
  switch (kind) {
    case JsonKind::kString:
      ok = it->is_string();
      expected = "a string";
      break;
    case JsonKind::kInteger:
      ok = it->is_number_integer();
      expected = "an integer";
      break;
    case JsonKind::kBool:
      ok = it->is_boolean();
      expected = "a boolean";
      break;
    case JsonKind::kArray:
      ok = it->is_array();
      expected = "an array";
      break;
    case JsonKind::kObject:
      ok = it->is_object();
      expected = "an object";
      break;
  }
  if (!ok)
    r.fail(str_cat("expected \"", path, key, "\" to be ", expected, ", got ", json_kind(*it)));
  return *it;
}

std::string idx_text(const JsonlRecord& r, const nlohmann::json& parent, const std::string& path,
                     const char* key) {
  const nlohmann::json& v = child(r, parent, path, key, JsonKind::kInteger);
  // JSON's non-negative integers parse as unsigned, so no value is cut to int64_t here.
  if (v.is_number_unsigned()) return std::to_string(v.get<uint64_t>());
  if (v.get<int64_t>() >= 0) return std::to_string(v.get<int64_t>());
  r.fail(str_cat("\"", path, key, "\" is ", v.get<int64_t>(), ", expected a non-negative integer"));
}

std::string example_id(const std::string& task, const std::string& split, const std::string& idx) {
  return str_cat(task, "-", split, "-", idx);
}

}  // namespace sp
