#pragma once
// MapReader: typed, located reads of one YAML map of a spec. Every getter names the key
// it accepts; finish() then rejects any key nobody asked for, with a did-you-mean over
// the keys that were asked for, so the schema is the code that reads it:
//
//   MapReader r(node_or_null, "stages.tune");
//   stage.steps = r.integer("steps", 1000);
//   r.check(stage.steps > 0, "steps", "must be positive");
//   r.finish();   // FILE:LINE:COL: unknown key 'stesp' in stages.tune; did you mean 'steps'?
//
// A misspelled key reads as absent, so a check that requires a key or relates two keys
// ("give exactly one", "needs stages.tune") would report the typo as something else. So
// each map reads (or declare()s) all its keys and calls finish() before such checks: the
// unknown key is then the error shown. Maps with fixed keys whose children are checked
// against each other (the top level, stages, sweep) declare them and finish() first.
#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "experiments/spec/yaml_tree.h"

namespace sp {

class MapReader {
 public:
  // node may be nullptr or null (an absent section: every getter returns its default);
  // anything else must be a map. fallback locates errors about keys that are absent.
  MapReader(const SpecNode* node, std::string path, SourceLocation fallback = {});

  // Marks keys as known without reading them yet, so that finish() can run first. Once
  // finish() ran, reading a key that was not declared is an internal error: the early
  // finish() would have refused that key as unknown.
  void declare(std::initializer_list<const char*> keys);

  bool has(const std::string& key) const;
  // The value node, marking key as known; nullptr when absent or null.
  const SpecNode* get(const std::string& key);
  // Where key's value is (or the map, or the fallback, when it is absent).
  SourceLocation loc(const std::string& key) const;
  // Where key itself is written (or loc(key) when it is absent).
  SourceLocation key_loc(const std::string& key) const;
  // Where an error about key and other together goes: loc(key), unless only other was
  // given by a flag (--set: a location without a line), which the error then names.
  SourceLocation conflict_loc(const std::string& key, const std::string& other) const;
  // "stages.tune.steps"
  std::string full(const std::string& key) const;

  int64_t integer(const std::string& key, int64_t default_value);
  double number(const std::string& key, double default_value);
  bool boolean(const std::string& key, bool default_value);
  std::string string(const std::string& key, const std::string& default_value);
  // One of options (did-you-mean otherwise).
  std::string choice(const std::string& key, const std::string& default_value,
                     const std::vector<std::string>& options);
  std::optional<double> optional_number(const std::string& key);
  // A string or a list of strings (a single string becomes a one-item list).
  std::vector<std::string> strings(const std::string& key, std::vector<std::string> default_value);
  // A nested map's reader (absent: an empty one).
  MapReader map(const std::string& key);

  // Throws "<loc(key)>: <full(key)> <message>, got <value>" when cond is false (without the
  // value when key holds no scalar or the message names what it got).
  void check(bool cond, const std::string& key, const std::string& message) const;
  // The same at conflict_loc(key, other): a check of key against other.
  void check_against(bool cond, const std::string& key, const std::string& other,
                     const std::string& message) const;
  [[noreturn]] void fail(const std::string& key, const std::string& message) const;

  // Marks key as one that the map accepts under another setting only: finish() then
  // rejects it with "<full(key)> applies only to <condition> (this one is <actual>)"
  // instead of as an unknown key (condition "schedule kind rsqrt", actual "linear").
  void applies_only_to(const std::string& key, const std::string& condition,
                       const std::string& actual);

  // Rejects keys that no getter asked for (nor declare() declared), with a did-you-mean
  // over those and the applies_only_to keys. Call it before the map's checks that require
  // a key or relate keys to each other (see above); calling it again is harmless.
  void finish();

  const SpecNode* node() const { return node_; }
  // The keys the getters asked for so far: the map's schema once it has been read.
  const std::vector<std::string>& known() const { return known_; }
  const std::string& path() const { return path_; }

 private:
  const SpecNode* scalar_node(const std::string& key, const char* expected);

  const SpecNode* node_;
  std::string path_;
  SourceLocation fallback_;
  std::vector<std::string> known_;
  std::map<std::string, std::string> conditions_;  // key -> why finish() rejects it
  bool finished_ = false;
};

// Typed conversions of a single node, for list items and sweep values; `what` names it.
int64_t node_integer(const SpecNode& node, const std::string& what);
std::string node_string(const SpecNode& node, const std::string& what);

}  // namespace sp
