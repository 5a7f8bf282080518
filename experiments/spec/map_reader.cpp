#include "experiments/spec/map_reader.h"

#include <algorithm>

#include "experiments/spec/scalar.h"
#include "tensor/error.h"

namespace sp {

MapReader::MapReader(const SpecNode* node, std::string path, SourceLocation fallback)
    : node_(node && !node->is_null() ? node : nullptr),
      path_(std::move(path)),
      fallback_(std::move(fallback)) {
  if (node_ && !node_->is_map())
    fail_at(node_->loc, str_cat(path_, " must be a map, got a ", node_->kind_name(), " ('",
                                node_->text(), "')"));
  if (node_ && fallback_.file.empty()) fallback_ = node_->loc;
}

bool MapReader::has(const std::string& key) const {
  const SpecNode* v = node_ ? node_->find(key) : nullptr;
  return v && !v->is_null();
}

void MapReader::declare(std::initializer_list<const char*> keys) {
  for (const char* key : keys) get(key);
}

const SpecNode* MapReader::get(const std::string& key) {
  if (std::find(known_.begin(), known_.end(), key) == known_.end()) {
    SP_CHECK(!finished_, "[spec] internal: ", full(key),
             " is read after finish() checked the keys of ", path_.empty() ? "the spec" : path_,
             "; declare() it before");
    known_.push_back(key);
  }
  const SpecNode* v = node_ ? node_->find(key) : nullptr;
  return v && !v->is_null() ? v : nullptr;
}

SourceLocation MapReader::loc(const std::string& key) const {
  if (const SpecNode* v = node_ ? node_->find(key) : nullptr) return v->loc;
  return fallback_;
}

SourceLocation MapReader::key_loc(const std::string& key) const {
  if (const SpecNode::Entry* e = node_ ? node_->find_entry(key) : nullptr) return e->key_loc;
  return loc(key);
}

SourceLocation MapReader::conflict_loc(const std::string& key, const std::string& other) const {
  const SpecNode* a = node_ ? node_->find(key) : nullptr;
  const SpecNode* b = node_ ? node_->find(other) : nullptr;
  const bool a_from_flag = a && a->loc.line == 0;
  const bool b_from_flag = b && b->loc.line == 0;
  return b_from_flag && !a_from_flag ? b->loc : loc(key);
}

std::string MapReader::full(const std::string& key) const {
  return path_.empty() ? key : path_ + "." + key;
}

void MapReader::check(bool cond, const std::string& key, const std::string& message) const {
  if (cond) return;
  // The value given, unless the message says it already ("lr must be positive, got -0.3").
  const SpecNode* v = node_ ? node_->find(key) : nullptr;
  if (v && v->is_scalar() && message.find("got ") == std::string::npos)
    fail(key, str_cat(message, ", got ", v->text()));
  fail(key, message);
}

void MapReader::check_against(bool cond, const std::string& key, const std::string& other,
                              const std::string& message) const {
  if (!cond) fail_at(conflict_loc(key, other), full(key) + " " + message);
}

void MapReader::fail(const std::string& key, const std::string& message) const {
  fail_at(loc(key), full(key) + " " + message);
}

const SpecNode* MapReader::scalar_node(const std::string& key, const char* expected) {
  const SpecNode* v = get(key);
  if (v && !v->is_scalar()) fail(key, str_cat("must be ", expected, ", got a ", v->kind_name()));
  return v;
}

int64_t MapReader::integer(const std::string& key, int64_t default_value) {
  const SpecNode* v = scalar_node(key, "an integer");
  if (!v) return default_value;
  return node_integer(*v, full(key));
}

double MapReader::number(const std::string& key, double default_value) {
  const SpecNode* v = scalar_node(key, "a number");
  if (!v) return default_value;
  const auto d = v->quoted ? std::nullopt : parse_double_text(v->scalar);
  if (!d) fail(key, str_cat("must be a number, got ", v->kind_name(), " '", v->scalar, "'"));
  return *d;
}

std::optional<double> MapReader::optional_number(const std::string& key) {
  if (!has(key)) {
    get(key);
    return std::nullopt;
  }
  return number(key, 0.0);
}

bool MapReader::boolean(const std::string& key, bool default_value) {
  const SpecNode* v = scalar_node(key, "true or false");
  if (!v) return default_value;
  const auto b = v->quoted ? std::nullopt : parse_bool_text(v->scalar);
  if (!b) fail(key, str_cat("must be true or false, got ", v->kind_name(), " '", v->scalar, "'"));
  return *b;
}

std::string MapReader::string(const std::string& key, const std::string& default_value) {
  const SpecNode* v = scalar_node(key, "a string");
  return v ? v->scalar : default_value;
}

std::string MapReader::choice(const std::string& key, const std::string& default_value,
                              const std::vector<std::string>& options) {
  const std::string value = string(key, default_value);
  if (std::find(options.begin(), options.end(), value) == options.end())
    fail(key, str_cat("has no value '", value, "'", suggestion_suffix(value, options)));
  return value;
}

std::vector<std::string> MapReader::strings(const std::string& key,
                                            std::vector<std::string> default_value) {
  const SpecNode* v = get(key);
  if (!v) return default_value;
  if (v->is_scalar()) return {v->scalar};
  if (!v->is_list())
    fail(key, str_cat("must be a string or a list of strings, got a ", v->kind_name()));
  std::vector<std::string> out;
  for (size_t i = 0; i < v->items.size(); ++i)
    out.push_back(node_string(v->items[i], str_cat(full(key), "[", i, "]")));
  return out;
}

MapReader MapReader::map(const std::string& key) {
  const SpecNode* v = get(key);
  return MapReader(v, full(key), v ? v->loc : loc(key));
}

void MapReader::applies_only_to(const std::string& key, const std::string& condition,
                                const std::string& actual) {
  SP_CHECK(!finished_, "[spec] internal: ", full(key), "'s condition is set after finish()");
  conditions_[key] = str_cat("applies only to ", condition, " (this one is ", actual, ")");
}

void MapReader::finish() {
  finished_ = true;
  if (!node_) return;
  // A key of another setting is a likely meaning too (it then says which setting it needs).
  std::vector<std::string> candidates = known_;
  for (const auto& [key, why] : conditions_) candidates.push_back(key);
  for (const SpecNode::Entry& e : node_->entries) {
    if (std::find(known_.begin(), known_.end(), e.key) != known_.end()) continue;
    if (auto it = conditions_.find(e.key); it != conditions_.end())
      fail_at(e.key_loc, str_cat(full(e.key), " ", it->second));
    fail_at(e.key_loc, str_cat("unknown key '", e.key, "' in ", path_.empty() ? "the spec" : path_,
                               suggestion_suffix(e.key, candidates)));
  }
}

int64_t node_integer(const SpecNode& node, const std::string& what) {
  const auto i = node.is_scalar() && !node.quoted ? parse_int_text(node.scalar) : std::nullopt;
  if (!i)
    fail_at(node.loc,
            str_cat(what, " must be an integer, got ", node.kind_name(), " '", node.text(), "'"));
  return *i;
}

std::string node_string(const SpecNode& node, const std::string& what) {
  if (!node.is_scalar())
    fail_at(node.loc, str_cat(what, " must be a string, got a ", node.kind_name()));
  return node.scalar;
}

}  // namespace sp
