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
  auto it = split_files.find(split);
  const std::string file = it != split_files.end() ? it->second : split + extension;
  const std::string path = (std::filesystem::path(dir) / file).string();
  if (!file_exists(path)) {
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
                            const std::string& path, const char* key, JsonKind kind) {
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

std::string example_id(const std::string& task, const std::string& split, const std::string& idx) {
  return str_cat(task, "-", split, "-", idx);
}

}  // namespace sp
