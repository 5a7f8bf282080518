#include "experiments/spec/yaml_tree.h"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>

#include "experiments/spec/scalar.h"
#include "models/tokenizer/utf8.h"
#include "tensor/error.h"

namespace sp {

std::string SourceLocation::str() const {
  if (line <= 0) return file;
  return str_cat(file, ":", line, ":", col);
}

void fail_at(const SourceLocation& loc, const std::string& message) {
  fail(str_cat(loc.str(), ": ", message, loc.origin.empty() ? "" : " (from " + loc.origin + ")"));
}

const SpecNode::Entry* SpecNode::find_entry(std::string_view key) const {
  if (kind != Kind::map) return nullptr;
  for (const Entry& e : entries)
    if (e.key == key) return &e;
  return nullptr;
}

const SpecNode* SpecNode::find(std::string_view key) const {
  const Entry* e = find_entry(key);
  return e ? &e->value : nullptr;
}

SpecNode* SpecNode::find(std::string_view key) {
  return const_cast<SpecNode*>(static_cast<const SpecNode*>(this)->find(key));
}

bool SpecNode::erase(std::string_view key) {
  if (kind != Kind::map) return false;
  auto it =
      std::find_if(entries.begin(), entries.end(), [&](const Entry& e) { return e.key == key; });
  if (it == entries.end()) return false;
  entries.erase(it);
  return true;
}

std::string SpecNode::kind_name() const {
  switch (kind) {
    case Kind::null: return "null";
    case Kind::list: return "list";
    case Kind::map: return "map";
    case Kind::scalar: break;
  }
  if (quoted) return "string";
  if (parse_bool_text(scalar)) return "boolean";
  if (parse_int_text(scalar) || parse_double_text(scalar)) return "number";
  return "string";
}

nlohmann::json SpecNode::to_json() const {
  switch (kind) {
    case Kind::null: return nullptr;
    case Kind::list: {
      nlohmann::json out = nlohmann::json::array();
      for (const SpecNode& item : items) out.push_back(item.to_json());
      return out;
    }
    case Kind::map: {
      nlohmann::json out = nlohmann::json::object();
      for (const Entry& e : entries) out[e.key] = e.value.to_json();
      return out;
    }
    case Kind::scalar: break;
  }
  if (quoted) return scalar;
  if (auto b = parse_bool_text(scalar)) return *b;
  if (auto i = parse_int_text(scalar)) return *i;
  if (auto d = parse_double_text(scalar)) return *d;
  return scalar;
}

std::string SpecNode::text() const {
  if (kind == Kind::scalar) return scalar;
  if (kind == Kind::null) return "null";
  return to_json().dump();
}

SpecNode SpecNode::make_scalar(std::string text, SourceLocation loc, bool quoted) {
  SpecNode n;
  n.kind = Kind::scalar;
  n.scalar = std::move(text);
  n.quoted = quoted;
  n.loc = std::move(loc);
  return n;
}

SpecNode SpecNode::make_map(SourceLocation loc) {
  SpecNode n;
  n.kind = Kind::map;
  n.loc = std::move(loc);
  return n;
}

namespace {

SourceLocation location_of(const YAML::Mark& mark, const std::string& source) {
  if (mark.is_null()) return {source, 0, 0};
  return {source, mark.line + 1, mark.column + 1};
}

// nodes counts the nodes made so far, against kMaxSpecNodes.
SpecNode convert(const YAML::Node& node, const std::string& source, size_t& nodes) {
  SpecNode out;
  out.loc = location_of(node.Mark(), source);
  if (++nodes > kMaxSpecNodes)
    fail_at(out.loc, str_cat("the document makes more than ", kMaxSpecNodes,
                             " maps, lists and values (an alias *NAME counts the nodes of its "
                             "anchor each time it is used)"));
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null: out.kind = SpecNode::Kind::null; break;
    case YAML::NodeType::Scalar:
      out.kind = SpecNode::Kind::scalar;
      out.scalar = node.Scalar();
      // yaml-cpp tags plain scalars "?" and quoted ones "!".
      out.quoted = node.Tag() == "!";
      break;
    case YAML::NodeType::Sequence:
      out.kind = SpecNode::Kind::list;
      for (const YAML::Node& item : node) out.items.push_back(convert(item, source, nodes));
      break;
    case YAML::NodeType::Map:
      out.kind = SpecNode::Kind::map;
      for (auto it = node.begin(); it != node.end(); ++it) {
        const SourceLocation key_loc = location_of(it->first.Mark(), source);
        if (!it->first.IsScalar()) fail_at(key_loc, "a map key must be a plain name");
        const std::string key = it->first.Scalar();
        if (const SpecNode::Entry* seen = out.find_entry(key))
          fail_at(key_loc,
                  str_cat("duplicate key '", key, "' (first at line ", seen->key_loc.line, ")"));
        out.entries.push_back({key, key_loc, convert(it->second, source, nodes)});
      }
      break;
  }
  return out;
}

}  // namespace

namespace {

// Line `line` (0-based) of text.
std::string_view line_of(std::string_view text, int line) {
  size_t start = 0;
  for (int i = 0; i < line && start != std::string_view::npos; ++i) {
    start = text.find('\n', start);
    if (start != std::string_view::npos) ++start;
  }
  if (start == std::string_view::npos) return {};
  return text.substr(start, text.find('\n', start) - start);
}

// Where the document whose root node is at line `content_line` (0-based) starts: the
// last `---` line at or before it, or content_line itself when a `...` (the end of the
// document before) comes after that `---` or there is none.
int document_start(std::string_view text, int content_line) {
  int start = content_line;
  size_t pos = 0;
  for (int line = 0; line <= content_line && pos <= text.size(); ++line) {
    const size_t newline = text.find('\n', pos);
    const std::string_view l =
        text.substr(pos, newline == std::string_view::npos ? newline : newline - pos);
    auto is_marker = [&](std::string_view m) {
      return l.substr(0, 3) == m &&
             (l.size() == 3 || std::isspace(static_cast<unsigned char>(l[3])));
    };
    if (is_marker("---")) start = line;
    if (is_marker("...")) start = content_line;
    if (newline == std::string_view::npos) break;
    pos = newline + 1;
  }
  return start;
}

// One YAML document, with every invalid UTF-8 byte and syntax error located in source.
YAML::Node load_document(const std::string& text, const std::string& source) {
  // YAML is Unicode text; a stray byte would otherwise travel into the resolved JSON.
  if (const size_t bad = utf8::first_invalid(text); bad != std::string_view::npos) {
    const size_t newline = text.rfind('\n', bad);  // text[bad] is not one
    const size_t line_start = newline == std::string::npos ? 0 : newline + 1;
    const auto line =
        std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(bad), '\n');
    char byte[8];
    std::snprintf(byte, sizeof byte, "0x%02X", static_cast<unsigned char>(text[bad]));
    fail_at({source, static_cast<int>(line) + 1, static_cast<int>(bad - line_start) + 1},
            str_cat("invalid UTF-8 (byte ", byte, "): a spec must be UTF-8 text"));
  }
  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(text);
  } catch (const YAML::DeepRecursion& e) {
    // yaml-cpp's own message for this is "bad file".
    fail_at(location_of(e.mark, source), str_cat("maps and lists nest deeper than ", e.depth() - 1,
                                                 " levels, the most the YAML reader accepts"));
  } catch (const YAML::Exception& e) {
    // The '{' of ${VAR} opens a map inside a flow list or map ([${VAR}/a], {k: ${VAR}}).
    const bool var_in_flow = e.msg.find("flow") != std::string::npos && !e.mark.is_null() &&
                             line_of(text, e.mark.line).find("${") != std::string_view::npos;
    fail_at(location_of(e.mark, source),
            str_cat(e.msg, var_in_flow ? ": ${VAR} cannot stand unquoted inside [...] or {...}; "
                                         "quote the value ('${VAR}/x') or write a block list "
                                         "(a line '- ${VAR}/x' per item)"
                                       : ""));
  }
  // Later documents would be ignored; empty ones (a trailing `---`) hold nothing to ignore.
  for (size_t i = 1; i < documents.size(); ++i)
    if (documents[i].IsDefined() && !documents[i].IsNull()) {
      const YAML::Mark mark = documents[i].Mark();
      const SourceLocation loc =
          mark.is_null() ? SourceLocation{source, 0, 0}
                         : SourceLocation{source, document_start(text, mark.line) + 1, 1};
      fail_at(loc,
              "a second YAML document starts here: a spec is one document (merge its keys "
              "into the first, or move it to a file of its own)");
    }
  return documents.empty() ? YAML::Node() : documents[0];
}

}  // namespace

SpecNode parse_yaml_tree(const std::string& text, const std::string& source) {
  const YAML::Node root = load_document(text, source);
  if (!root.IsDefined() || root.IsNull()) return SpecNode::make_map({source, 1, 1});
  size_t nodes = 0;
  return convert(root, source, nodes);
}

SpecNode load_yaml_tree(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  SP_CHECK(in, "[spec] cannot read ", path, ": ", std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  return parse_yaml_tree(text.str(), path);
}

void merge_into(SpecNode& base, const SpecNode& overlay) {
  if (!base.is_map() || !overlay.is_map()) {
    base = overlay;
    return;
  }
  for (const SpecNode::Entry& e : overlay.entries) {
    if (e.value.is_null()) {
      base.erase(e.key);
      continue;
    }
    if (SpecNode* existing = base.find(e.key)) {
      merge_into(*existing, e.value);
    } else {
      base.entries.push_back(e);
    }
  }
}

std::vector<std::string> split_dotted(const std::string& key, const SourceLocation& loc) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t dot = key.find('.', start);
    const std::string part =
        key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (part.empty()) fail_at(loc, str_cat("bad key '", key, "': empty component"));
    if (parts.size() == kMaxDottedComponents)
      fail_at(loc, str_cat("bad key '", key.substr(0, 40), "...': more than ", kMaxDottedComponents,
                           " components"));
    parts.push_back(part);
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return parts;
}

namespace {

// part as an index of list's items, or nullopt when it is not one.
std::optional<size_t> list_index(const SpecNode& list, const std::string& part) {
  const auto index = parse_int_text(part);
  if (!index || *index < 0 || *index >= static_cast<int64_t>(list.items.size()))
    return std::nullopt;
  return static_cast<size_t>(*index);
}

}  // namespace

void set_dotted(SpecNode& root, const std::vector<std::string>& path, SpecNode value,
                const SourceLocation& key_loc) {
  SpecNode* node = &root;
  std::string walked;
  for (size_t i = 0; i < path.size(); ++i) {
    const std::string& part = path[i];
    const bool last = i + 1 == path.size();
    if (node->is_list()) {
      const auto index = list_index(*node, part);
      if (!index)
        fail_at(key_loc, str_cat("'", part, "' is not an index of the list ", walked, " (",
                                 node->items.size(), " items)"));
      SpecNode& item = node->items[*index];
      if (last) {
        item = std::move(value);
        return;
      }
      node = &item;
    } else {
      if (node->is_null()) *node = SpecNode::make_map(key_loc);
      if (!node->is_map())
        fail_at(key_loc,
                str_cat("cannot set '", part, "' inside ", walked.empty() ? "the root" : walked,
                        ": it is a ", node->kind_name(), ", not a map"));
      SpecNode* child = node->find(part);
      if (!child) {
        node->entries.push_back({part, key_loc, SpecNode{}});
        child = &node->entries.back().value;
        child->loc = key_loc;
      }
      if (last) {
        *child = std::move(value);
        return;
      }
      node = child;
    }
    walked += (walked.empty() ? "" : ".") + part;
  }
}

void erase_dotted(SpecNode& root, const std::vector<std::string>& path, const SourceLocation& loc) {
  SpecNode* node = &root;
  for (size_t i = 0; i < path.size(); ++i) {
    const bool last = i + 1 == path.size();
    std::string missing;  // why path[i] is not there
    if (node->is_list()) {
      if (const auto index = list_index(*node, path[i])) {
        if (last) {
          node->items.erase(node->items.begin() + static_cast<std::ptrdiff_t>(*index));
          return;
        }
        node = &node->items[*index];
        continue;
      }
      missing = str_cat(" (a list of ", node->items.size(), " items)");
    } else if (node->is_map()) {
      if (SpecNode* child = node->find(path[i])) {
        if (last) {
          node->erase(path[i]);
          return;
        }
        node = child;
        continue;
      }
      std::vector<std::string> keys;
      for (const SpecNode::Entry& e : node->entries) keys.push_back(e.key);
      missing = suggestion_suffix(path[i], keys);
    }
    std::string prefix;
    for (size_t j = 0; j <= i; ++j) prefix += (j ? "." : "") + path[j];
    fail_at(loc, str_cat("nothing to delete: the spec has no ", prefix, missing));
  }
}

namespace {

void relocate(SpecNode& node, const SourceLocation& loc) {
  node.loc = loc;
  for (SpecNode& item : node.items) relocate(item, loc);
  for (SpecNode::Entry& e : node.entries) {
    e.key_loc = loc;
    relocate(e.value, loc);
  }
}

}  // namespace

SetFlag parse_set_flag(const std::string& text, const std::string& example) {
  const SourceLocation loc{"--set " + text, 0, 0};
  const size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0)
    fail_at(loc, str_cat("expected key=value, e.g. --set ", example));
  SetFlag s{split_dotted(text.substr(0, eq), loc), {}, loc};
  // An empty value ("--set a=") and a YAML null ("a=null", "a=~") stay null: they delete
  // the key, as a null does in a spec that extends another.
  const YAML::Node value = load_document(text.substr(eq + 1), loc.file);
  size_t nodes = 0;
  if (value.IsDefined() && !value.IsNull()) s.value = convert(value, loc.file, nodes);
  relocate(s.value, loc);
  return s;
}

}  // namespace sp
