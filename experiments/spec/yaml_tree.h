#pragma once
// SpecNode: a YAML document as a plain tree whose every node remembers the file, line and
// column it came from. yaml-cpp's marks carry no file name and are lost when documents
// are merged (extends:), overridden (--set) or swept, so the loader copies the document
// into this tree first and does all of that here; errors then point at the line that
// holds the bad value, whichever file or flag it came from.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sp {

struct SourceLocation {
  // {file, line, col}: origin is set apart, by the variable substitution only.
  SourceLocation() = default;
  SourceLocation(std::string file, int line, int col)
      : file(std::move(file)), line(line), col(col) {}

  std::string file;  // a path, or a description such as "--set stages.tune.steps=5"
  int line = 0;      // 1-based; 0: the whole source
  int col = 0;       // 1-based
  // Where a value written here as ${VAR} came from when not from the spec itself
  // ("$T5_DIR in the environment", "--set vars.T5_DIR=/x"); fail_at adds it to the message.
  std::string origin;
  // "file:line:col", or just "file" when line is 0.
  std::string str() const;
};

struct SpecNode {
  enum class Kind { null, scalar, list, map };
  struct Entry;

  Kind kind = Kind::null;
  std::string scalar;           // Kind::scalar: the text as written
  bool quoted = false;          // a quoted scalar is always a string
  std::vector<SpecNode> items;  // Kind::list
  std::vector<Entry> entries;   // Kind::map, in document order, keys unique
  SourceLocation loc;

  bool is_null() const { return kind == Kind::null; }
  bool is_scalar() const { return kind == Kind::scalar; }
  bool is_list() const { return kind == Kind::list; }
  bool is_map() const { return kind == Kind::map; }

  // Map look-up; nullptr when absent (or this is not a map).
  const SpecNode* find(std::string_view key) const;
  SpecNode* find(std::string_view key);
  const Entry* find_entry(std::string_view key) const;
  // Removes a map entry; false when absent.
  bool erase(std::string_view key);

  // "map", "list", "string", "number", "boolean", "null": for "expected X, got Y".
  std::string kind_name() const;
  // Scalars as JSON: unquoted integers, floats, true/false and null become numbers,
  // booleans and null; everything else a string.
  nlohmann::json to_json() const;
  // Compact one-line text: the scalar itself, or flow YAML/JSON for lists and maps.
  std::string text() const;

  static SpecNode make_scalar(std::string text, SourceLocation loc, bool quoted = false);
  static SpecNode make_map(SourceLocation loc);
};

struct SpecNode::Entry {
  std::string key;
  SourceLocation key_loc;
  SpecNode value;
};

// Throws sp::Error "<loc>: <message>", or "<loc>: <message> (from <loc.origin>)".
[[noreturn]] void fail_at(const SourceLocation& loc, const std::string& message);

// The most nodes (maps, lists, scalars) a document may make once its aliases are expanded:
// ten aliases of ten aliases of ... (a "billion laughs") would otherwise exhaust memory.
inline constexpr size_t kMaxSpecNodes = size_t{1} << 20;
// The most components of a dotted key (a --set key, a swept key); deeper trees than YAML's
// own nesting limit would overflow the stack of the recursive tree code.
inline constexpr size_t kMaxDottedComponents = 100;

// Parses YAML text (one document) into a tree; source names the file in locations.
// Throws "FILE:LINE:COL: <yaml-cpp's message>" on a syntax error and on a duplicate key,
// and a located error for a second document (after `---`), for nesting deeper than the
// YAML reader allows and for more than kMaxSpecNodes nodes; anchors and aliases are
// expanded; an empty document is an empty map.
SpecNode parse_yaml_tree(const std::string& text, const std::string& source);
// The same for a file; throws "[spec] cannot read <path>".
SpecNode load_yaml_tree(const std::string& path);

// Deep merge: maps merge key by key (overlay's entries win, new keys keep overlay's order
// after the base's), a null overlay value deletes the key, anything else replaces.
void merge_into(SpecNode& base, const SpecNode& overlay);

// Splits "a.b.0.c" on dots; empty components and more than kMaxDottedComponents are an
// error (at loc).
std::vector<std::string> split_dotted(const std::string& key, const SourceLocation& loc);

// Sets the node at a dotted path, creating maps for missing components; a numeric
// component indexes an existing list. key_loc is where the key was written (for later
// unknown-key errors). Throws at key_loc when a component crosses a scalar or a list index
// is out of range.
void set_dotted(SpecNode& root, const std::vector<std::string>& path, SpecNode value,
                const SourceLocation& key_loc);

// Removes the node at a dotted path (a map entry or a list item), creating nothing. Throws
// at loc when the path is not there ("nothing to delete", with a did-you-mean for a
// misspelled key), so a typo does not pass for a deletion.
void erase_dotted(SpecNode& root, const std::vector<std::string>& path, const SourceLocation& loc);

// A `--set key=value` flag: the dotted key split, the value parsed as YAML (an empty value
// and a YAML null, `null` or `~`, are null: they delete the key), every node and key
// located at the flag itself.
struct SetFlag {
  std::vector<std::string> path;
  SpecNode value;
  SourceLocation loc;  // "--set key=value"
};
// example shows a well-formed flag in the error for text without '=' ("a.b=1").
SetFlag parse_set_flag(const std::string& text, const std::string& example);

}  // namespace sp
