// load_spec: extends -> --set and variables -> sweep expansion -> one validated Trial per
// sweep point -> ids and stage hashes.
#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include "experiments/data/sha256.h"
#include "experiments/report/results.h"
#include "experiments/spec/map_reader.h"
#include "experiments/spec/scalar.h"
#include "experiments/spec/spec.h"
#include "experiments/spec/trial_parse.h"
#include "experiments/spec/yaml_tree.h"
#include "experiments/tasks/task_io.h"
#include "tensor/error.h"
#include "tensor/suggest.h"

namespace sp {

namespace {

namespace fs = std::filesystem;

// 64 bits of SHA-256 over the compact JSON (sorted keys): a cache key, not a signature.
std::string hash_json(const nlohmann::json& j) { return sha256_hex(j.dump()).substr(0, 16); }

// A swept value as the duplicate checks compare it: every number a double, so 1 and 1.0
// (one value to every setting) are one value.
nlohmann::json numbers_as_doubles(nlohmann::json j) {
  if (j.is_number()) return j.get<double>();
  if (j.is_array() || j.is_object())
    for (auto& v : j) v = numbers_as_doubles(std::move(v));
  return j;
}

std::string directory_of(const std::string& source) {
  fs::path p = fs::absolute(fs::path(source)).lexically_normal();
  return p.parent_path().string();
}

// Replaces tree with its `extends:` base merged under it, recursively.
SpecNode resolve_extends(SpecNode tree, const std::string& source,
                         std::vector<std::string>& chain) {
  const SpecNode* ext = tree.find("extends");
  if (!ext) return tree;
  const std::string rel = node_string(*ext, "extends");
  fs::path base_path(rel);
  if (base_path.is_relative()) base_path = fs::path(directory_of(source)) / base_path;
  const std::string base = base_path.lexically_normal().string();
  if (std::find(chain.begin(), chain.end(), base) != chain.end())
    fail_at(ext->loc, str_cat("extends '", rel, "' makes a cycle (", base, " is already loading)"));
  std::error_code ec;
  if (!fs::is_regular_file(base, ec))
    fail_at(ext->loc, str_cat("extends '", rel, "': no such file (", base, ")"));
  chain.push_back(base);
  SpecNode merged = resolve_extends(load_yaml_tree(base), base, chain);
  chain.pop_back();
  tree.erase("extends");
  merge_into(merged, tree);
  return merged;
}

// Swept keys are dotted themselves: --set sweep.grid.stages.tune.steps=[1,2] means the
// grid entry "stages.tune.steps" (and sweep.zip.GROUP.a.b the entry "a.b" of an existing
// named group), not nested maps.
std::vector<std::string> sweep_aware_path(const SpecNode& tree,
                                          const std::vector<std::string>& path) {
  if (path.size() < 3 || path[0] != "sweep" || (path[1] != "grid" && path[1] != "zip")) return path;
  size_t head = 2;
  if (path[1] == "zip" && path.size() > 3) {
    const SpecNode* sweep = tree.find("sweep");
    const SpecNode* zip = sweep ? sweep->find("zip") : nullptr;
    const SpecNode* group = zip ? zip->find(path[2]) : nullptr;
    if (group && group->is_map()) head = 3;
  }
  std::vector<std::string> out(path.begin(), path.begin() + static_cast<std::ptrdiff_t>(head));
  std::string key;
  for (size_t i = head; i < path.size(); ++i) key += (key.empty() ? "" : ".") + path[i];
  out.push_back(key);
  return out;
}

bool valid_var_name(const std::string& name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

struct Var {
  std::string value;
  SourceLocation loc;
  std::string origin;  // "$NAME in the environment", "--set vars.NAME=x"; empty: the spec
};

// The longest a value (or a variable) may be once its ${VAR}s are substituted, and the
// most that substitution may make of all the spec's values together. A variable that uses
// another several times grows exponentially with the depth (eight levels of eight make
// gigabytes); no spec needs anything near these.
constexpr size_t kMaxExpandedValue = size_t{1} << 20;   // 1 MiB
constexpr size_t kMaxExpandedTotal = size_t{16} << 20;  // 16 MiB

class Interpolator {
 public:
  explicit Interpolator(std::map<std::string, Var> vars) : vars_(std::move(vars)) {}

  // "${NAME}" -> the variable's value (itself interpolated), "$$" -> "$". The origins of
  // the variables used from outside the spec are added to origins_.
  std::string expand(const std::string& text, const SourceLocation& loc) {
    std::string out;
    for (size_t i = 0; i < text.size(); ++i) {
      if (text[i] != '$') {
        out += text[i];
      } else if (i + 1 < text.size() && text[i + 1] == '$') {
        out += '$';
        ++i;
      } else if (i + 1 < text.size() && text[i + 1] == '{') {
        const size_t close = text.find('}', i + 2);
        if (close == std::string::npos) fail_at(loc, str_cat("unterminated ${ in '", text, "'"));
        out += value_of(text.substr(i + 2, close - i - 2), loc);
        i = close;
        if (out.size() > kMaxExpandedValue)
          fail_at(loc, str_cat("${VAR} substitution makes ",
                               active_.empty() ? "the value" : "variable ${" + active_.back() + "}",
                               " longer than ", kMaxExpandedValue, " bytes (1 MiB), the limit"));
      } else {
        out += '$';
      }
    }
    return out;
  }

  // Substitutes every scalar of node; a value that used a variable set outside the spec
  // (the environment, --set vars.NAME) remembers it, for its errors to name.
  void expand_tree(SpecNode& node) {
    if (node.is_scalar() && node.scalar.find('$') != std::string::npos) {
      origins_.clear();
      node.scalar = expand(node.scalar, node.loc);
      for (const std::string& origin : origins_)
        node.loc.origin += (node.loc.origin.empty() ? "" : ", ") + origin;
      total_ += node.scalar.size();
      if (total_ > kMaxExpandedTotal)
        fail_at(node.loc, str_cat("${VAR} substitution makes the spec's values longer than ",
                                  kMaxExpandedTotal, " bytes (16 MiB) in all, the limit"));
    }
    for (SpecNode& item : node.items) expand_tree(item);
    for (SpecNode::Entry& e : node.entries) expand_tree(e.value);
  }

  std::map<std::string, std::string> resolved() {
    std::map<std::string, std::string> out;
    for (const auto& [name, var] : vars_) out[name] = value_of(name, var.loc);
    return out;
  }

 private:
  struct Resolved {
    std::string value;
    std::vector<std::string> origins;  // of the variable and of those its value uses
  };

  std::string value_of(const std::string& name, const SourceLocation& loc) {
    auto it = vars_.find(name);
    if (it == vars_.end()) {
      std::vector<std::string> names;
      for (const auto& [n, v] : vars_) names.push_back(n);
      const std::string match = closest_match(name, names);
      fail_at(loc, str_cat("undefined variable ${", name, "}: declare it under vars:",
                           match.empty() ? "" : " (did you mean '" + match + "'?)"));
    }
    auto done = done_.find(name);
    if (done == done_.end()) {
      if (std::find(active_.begin(), active_.end(), name) != active_.end())
        fail_at(it->second.loc, str_cat("variable ${", name, "} refers to itself"));
      std::vector<std::string> outer = std::exchange(origins_, {});
      if (!it->second.origin.empty()) origins_.push_back(it->second.origin);
      active_.push_back(name);
      std::string value = expand(it->second.value, it->second.loc);
      active_.pop_back();
      done = done_.emplace(name, Resolved{std::move(value), std::exchange(origins_, outer)}).first;
    }
    for (const std::string& origin : done->second.origins)
      if (std::find(origins_.begin(), origins_.end(), origin) == origins_.end())
        origins_.push_back(origin);
    return done->second.value;
  }

  std::map<std::string, Var> vars_;
  std::map<std::string, Resolved> done_;
  std::vector<std::string> active_;
  std::vector<std::string> origins_;  // of the variables the text being expanded used
  size_t total_ = 0;                  // bytes of the substituted values so far
};

struct SweepAxis {
  std::string key;  // dotted
  std::vector<std::string> path;
  SourceLocation key_loc;
  std::vector<SpecNode> values;
  std::string section;  // "grid", "zip", "zip.GROUP"
};

// The key sweep.seeds sets in each trial.
const std::vector<std::string> kSeedPath = {"stages", "tune", "seed"};

// The most trials a spec may expand to, counted from the lengths of its lists before any is
// made: a dry run of 100000 takes seconds and half a gigabyte, and a few more swept keys
// would take hours and all the memory before anything runs.
constexpr uint64_t kMaxTrials = 100000;

// Whether setting `later` after `value` was set at `path` overwrites some of it: `later` is
// path or a key above it, or a key inside path that value has (not null).
bool overwrites(const std::vector<std::string>& later, const std::vector<std::string>& path,
                const SpecNode& value) {
  const size_t common = std::min(later.size(), path.size());
  if (!std::equal(later.begin(), later.begin() + static_cast<std::ptrdiff_t>(common), path.begin()))
    return false;
  const SpecNode* node = &value;
  for (size_t i = common; i < later.size() && node; ++i) {
    if (node->is_list()) {
      const auto index = parse_int_text(later[i]);
      node = index && *index >= 0 && *index < static_cast<int64_t>(node->items.size())
                 ? &node->items[static_cast<size_t>(*index)]
                 : nullptr;
    } else {
      node = node->find(later[i]);
    }
  }
  return node && !node->is_null();
}

struct Sweep {
  std::vector<std::vector<SweepAxis>> zips;  // each group's lists advance together
  std::vector<SweepAxis> grid;
  std::vector<int64_t> seeds;
  std::vector<std::string> hide;  // swept keys left out of trial ids
  std::string x;                  // the key reports plot against
  SourceLocation seeds_loc;
  SourceLocation loc;

  std::vector<const SweepAxis*> axes() const {
    std::vector<const SweepAxis*> out;
    for (const auto& group : zips)
      for (const SweepAxis& a : group) out.push_back(&a);
    for (const SweepAxis& a : grid) out.push_back(&a);
    return out;
  }
};

SweepAxis read_axis(const SpecNode::Entry& e, const std::string& section) {
  SweepAxis a{e.key, split_dotted(e.key, e.key_loc), e.key_loc, {}, section};
  static const std::set<std::string> forbidden = {"name", "description", "vars", "sweep",
                                                  "extends"};
  if (forbidden.count(a.path[0]))
    fail_at(e.key_loc,
            str_cat("sweep.", section, " cannot sweep '", e.key, "'",
                    a.path[0] == "vars" ? ": sweep the key that uses the variable" : ""));
  if (!e.value.is_list() || e.value.items.empty())
    fail_at(e.value.loc,
            str_cat("sweep.", section, ".", e.key, " must be a non-empty list of values"));
  a.values = e.value.items;
  return a;
}

Sweep read_sweep(const SpecNode* node) {
  Sweep s;
  MapReader r(node, "sweep");
  // Unknown keys first (see MapReader): `gird:` would otherwise leave sweep.x naming a key
  // that is not swept.
  r.declare({"grid", "zip", "x", "hide", "seeds"});
  r.finish();
  if (node) s.loc = node->loc;
  if (MapReader grid = r.map("grid"); grid.node())
    for (const SpecNode::Entry& e : grid.node()->entries) s.grid.push_back(read_axis(e, "grid"));
  // zip: `key: [..]` entries form one group; `name: {key: [..], ..}` entries are named
  // groups. Groups are crossed with each other and with the grid.
  if (MapReader zip = r.map("zip"); zip.node()) {
    std::vector<SweepAxis> unnamed;
    std::vector<std::vector<SweepAxis>> named;
    for (const SpecNode::Entry& e : zip.node()->entries) {
      if (e.value.is_map()) {
        std::vector<SweepAxis> group;
        for (const SpecNode::Entry& inner : e.value.entries)
          group.push_back(read_axis(inner, "zip." + e.key));
        if (group.empty()) fail_at(e.value.loc, str_cat("sweep.zip.", e.key, " is an empty group"));
        named.push_back(std::move(group));
      } else {
        unnamed.push_back(read_axis(e, "zip"));
      }
    }
    if (!unnamed.empty()) s.zips.push_back(std::move(unnamed));
    for (auto& group : named) s.zips.push_back(std::move(group));
  }
  // A repeated grid value, or a repeated tuple of a zip group, would run a trial twice.
  // (Looked up by their JSON text, numbers as doubles: comparing every pair would take
  // minutes for a long list.)
  for (const SweepAxis& a : s.grid) {
    std::set<std::string> seen;
    for (const SpecNode& v : a.values)
      if (!seen.insert(numbers_as_doubles(v.to_json()).dump()).second)
        fail_at(v.loc, str_cat("sweep.grid.", a.key, " lists '", v.text(), "' twice"));
  }
  for (const auto& group : s.zips)
    for (const SweepAxis& a : group)
      if (a.values.size() != group[0].values.size())
        fail_at(a.key_loc, str_cat("sweep.zip lists must have equal lengths: ", a.key, " has ",
                                   a.values.size(), " values, ", group[0].key, " has ",
                                   group[0].values.size()));
  for (const auto& group : s.zips) {
    std::map<std::string, size_t> first;  // an entry's values as JSON -> its index
    for (size_t i = 0; i < group[0].values.size(); ++i) {
      nlohmann::json entry = nlohmann::json::array();
      for (const SweepAxis& a : group) entry.push_back(numbers_as_doubles(a.values[i].to_json()));
      const auto [it, added] = first.emplace(entry.dump(), i);
      if (!added)
        fail_at(group[0].values[i].loc, str_cat("sweep.zip: entry ", i + 1, " repeats entry ",
                                                it->second + 1, " in every list"));
    }
  }
  const std::vector<const SweepAxis*> axes = s.axes();
  std::vector<std::string> keys;
  for (const SweepAxis* a : axes) {
    if (std::find(keys.begin(), keys.end(), a->key) != keys.end())
      fail_at(a->key_loc, str_cat("'", a->key, "' is swept twice"));
    keys.push_back(a->key);
  }
  // Values apply in this order (the zips, then the grid): a later key above an earlier one,
  // or inside a map it sets, would replace its values in every trial without a word.
  for (size_t j = 0; j < axes.size(); ++j)
    for (size_t i = 0; i < j; ++i)
      for (const SpecNode& value : axes[i]->values)
        if (overwrites(axes[j]->path, axes[i]->path, value))
          fail_at(axes[j]->key_loc,
                  str_cat("sweep.", axes[j]->section, ".", axes[j]->key, " replaces what sweep.",
                          axes[i]->section, ".", axes[i]->key, " sets (", value.text(),
                          "); sweep the key once, or keys that do not overlap"));
  s.x = r.string("x", "");
  if (!s.x.empty() && s.x != kTotalParamsAxis &&
      std::find(keys.begin(), keys.end(), s.x) == keys.end()) {
    std::vector<std::string> axes = keys;
    axes.push_back(kTotalParamsAxis);
    r.fail("x", str_cat("names '", s.x, "', which is not swept (nor ", kTotalParamsAxis, ")",
                        suggestion_suffix(s.x, axes)));
  }
  s.hide = r.strings("hide", {});
  for (const std::string& h : s.hide)
    if (std::find(keys.begin(), keys.end(), h) == keys.end())
      r.fail("hide", str_cat("names '", h, "', which is not swept", suggestion_suffix(h, keys)));
  if (const SpecNode* seeds = r.get("seeds")) {
    s.seeds_loc = seeds->loc;
    if (!seeds->is_list() || seeds->items.empty())
      fail_at(seeds->loc, "sweep.seeds must be a non-empty list of integers");
    std::set<int64_t> seen_seeds;
    for (const SpecNode& item : seeds->items) {
      const int64_t seed = node_integer(item, "sweep.seeds");
      if (seed < 0) fail_at(item.loc, "sweep.seeds must be >= 0");
      if (!seen_seeds.insert(seed).second)
        fail_at(item.loc, str_cat("sweep.seeds lists ", seed, " twice"));
      s.seeds.push_back(seed);
    }
  }
  if (!s.seeds.empty())
    for (const SweepAxis* a : axes)
      for (const SpecNode& value : a->values)
        if (overwrites(kSeedPath, a->path, value)) {
          // At the swept key, unless only sweep.seeds was given by a flag.
          const bool seeds_by_flag = s.seeds_loc.line == 0 && a->key_loc.line != 0;
          fail_at(seeds_by_flag ? s.seeds_loc : a->key_loc,
                  str_cat("sweep.", a->section,
                          a->path == kSeedPath ? " sweeps " : "." + a->key + " sets ",
                          "stages.tune.seed, which sweep.seeds already sets; list the seeds in "
                          "sweep.seeds only"));
        }
  // Counted before expand() makes them, so that a huge sweep fails at once.
  uint64_t trials = 1;
  bool overflow = false;
  auto times = [&](size_t n) {
    if (n > 0 && trials > std::numeric_limits<uint64_t>::max() / n) overflow = true;
    trials *= n;
  };
  for (const auto& group : s.zips) times(group[0].values.size());
  for (const SweepAxis& a : s.grid) times(a.values.size());
  if (!s.seeds.empty()) times(s.seeds.size());
  if (overflow || trials > kMaxTrials)
    fail_at(s.loc, str_cat("the sweep makes ", overflow ? "more than 2^64" : std::to_string(trials),
                           " trials (the lengths of its zip groups, grid lists and seeds "
                           "multiplied), more than the limit of ",
                           kMaxTrials, ": split it into several specs"));
  return s;
}

// The value as it appears in a trial id: a path's last component, other scalars as they
// are; a map's values joined with '-', a list's items with '+'
// ({method: prompt_tuning, length: 100} -> "prompt_tuning-100").
std::string id_value(const SpecNode& v, bool full) {
  if (v.is_map() || v.is_list()) {
    std::string out;
    const char sep = v.is_map() ? '-' : '+';
    auto add = [&](const SpecNode& item) {
      out += (out.empty() ? "" : std::string(1, sep)) + id_value(item, full);
    };
    for (const SpecNode& item : v.items) add(item);
    for (const SpecNode::Entry& e : v.entries) add(e.value);
    return out;
  }
  std::string text = v.text();
  if (!full && text.find('/') != std::string::npos) {
    while (text.size() > 1 && text.back() == '/') text.pop_back();
    text = text.substr(text.rfind('/') + 1);
  }
  return text;
}

std::string sanitize_id(const std::string& id) {
  std::string out = id;
  for (char& c : out)
    if (!(std::isalnum(static_cast<unsigned char>(c)) ||
          std::string_view("._=,+-").find(c) != std::string_view::npos))
      c = '_';
  return out;
}

struct Point {
  std::vector<std::pair<const SweepAxis*, const SpecNode*>> values;
  std::optional<int64_t> seed;
};

std::vector<Point> expand(const Sweep& s) {
  std::vector<Point> points(1);
  for (const auto& group : s.zips) {
    std::vector<Point> next;
    for (const Point& p : points)
      for (size_t i = 0; i < group[0].values.size(); ++i) {
        Point q = p;
        for (const SweepAxis& a : group) q.values.push_back({&a, &a.values[i]});
        next.push_back(q);
      }
    points = next;
  }
  for (const SweepAxis& a : s.grid) {
    std::vector<Point> next;
    for (const Point& p : points)
      for (const SpecNode& v : a.values) {
        Point q = p;
        q.values.push_back({&a, &v});
        next.push_back(q);
      }
    points = next;
  }
  if (!s.seeds.empty()) {
    std::vector<Point> next;
    for (const Point& p : points)
      for (int64_t seed : s.seeds) {
        Point q = p;
        q.seed = seed;
        next.push_back(q);
      }
    points = next;
  }
  return points;
}

void fill_hashes(Trial& t) {
  const std::string origin = t.origin_hash();
  std::string upstream = origin;
  if (t.pretrain) {
    t.pretrain->depends_on = upstream;
    t.pretrain->hash = hash_json({{"stage", "pretrain"},
                                  {"code", stage_code_version(StageKind::pretrain)},
                                  {"config", t.pretrain->canonical_json()},
                                  {"from", upstream}});
    upstream = t.pretrain->hash;
  }
  if (t.lm_adapt) {
    t.lm_adapt->depends_on = upstream;
    t.lm_adapt->hash = hash_json({{"stage", "lm_adapt"},
                                  {"code", stage_code_version(StageKind::lm_adapt)},
                                  {"config", t.lm_adapt->canonical_json()},
                                  {"from", upstream}});
    upstream = t.lm_adapt->hash;
  }
  // A frozen backbone's dtype changes what tuning and evaluation compute, not what the
  // stages before them do.
  const std::string backbone = dtype_name(t.model.dtype);
  auto tune_hash = [&](TuneStage& tune) {
    tune.depends_on = upstream;
    tune.hash = hash_json({{"stage", "tune"},
                           {"code", stage_code_version(StageKind::tune)},
                           {"config", tune.canonical_json()},
                           {"from", upstream},
                           {"backbone_dtype", backbone}});
  };
  if (t.tune) tune_hash(*t.tune);
  if (t.eval) {
    nlohmann::json members = nlohmann::json::array();
    if (t.eval->ensemble > 1) {
      for (int64_t k = 0; k < t.eval->ensemble; ++k) {
        TuneStage member = *t.tune;
        member.seed = t.tune->seed + static_cast<uint64_t>(k);
        tune_hash(member);
        members.push_back(member.hash);
        t.ensemble.push_back(std::move(member));
      }
    }
    t.eval->depends_on = t.tune->hash;
    t.eval->hash = hash_json({{"stage", "eval"},
                              {"code", stage_code_version(StageKind::eval)},
                              {"config", t.eval->canonical_json()},
                              {"from", t.tune->hash},
                              {"ensemble", members},
                              {"backbone_dtype", backbone}});
  }
}

// A --set of a key that the sweep sets in every trial would be lost without a word.
void check_sets_against_sweep(const std::vector<SetFlag>& sets, const Sweep& sweep) {
  for (const SetFlag& s : sets) {
    if (s.path[0] == "sweep" || s.path[0] == "vars") continue;
    for (const SweepAxis* a : sweep.axes())
      if (overwrites(a->path, s.path, s.value))
        fail_at(s.loc, str_cat(a->key, " is swept by sweep.", a->section,
                               ", which sets it in every trial; set the swept values instead "
                               "(--set 'sweep.",
                               a->section, ".", a->key, "=[...]')"));
    if (!sweep.seeds.empty() && overwrites(kSeedPath, s.path, s.value))
      fail_at(s.loc,
              "stages.tune.seed is swept by sweep.seeds, which sets it in every trial; "
              "set the seeds instead (--set 'sweep.seeds=[...]')");
  }
}

// After --set and variables: `--set name=X` renames the run like a `name:` in the file.
void read_name_and_description(const SpecNode& tree, const std::string& source, bool named,
                               ExperimentSpec& spec) {
  MapReader root(&tree, "");
  spec.name = named ? root.string("name", "") : fs::path(source).stem().string();
  root.check(is_file_name_safe(spec.name), "name",
             str_cat("'", spec.name, "' must be ", kFileNameRule, " (it names the run directory)"));
  spec.description = root.string("description", "");
}

}  // namespace

std::string Trial::origin_hash() const {
  nlohmann::json j = {{"model", model.canonical_json()}, {"tokenizer", tokenizer.canonical_json()}};
  if (pretrain || lm_adapt || tokenizer.source == "train") j["corpus"] = corpus.canonical_json();
  return hash_json(j);
}

ExperimentSpec parse_spec(const std::string& yaml_text, const std::string& source,
                          const SpecLoadOptions& options) {
  SpecNode top = parse_yaml_tree(yaml_text, source);
  if (!top.is_map())
    fail_at(top.loc, str_cat("a spec must be a map of keys, got a ", top.kind_name()));
  bool named = top.find("name") != nullptr;  // a base's name is not inherited
  std::vector<std::string> chain = {fs::absolute(source).lexically_normal().string()};
  SpecNode tree = resolve_extends(std::move(top), source, chain);

  ExperimentSpec spec;
  spec.source = source;

  // Variables: the spec's defaults, then the environment, then --set vars.NAME=...
  std::vector<SetFlag> sets;
  for (const std::string& text : options.sets)
    sets.push_back(parse_set_flag(text, "stages.tune.steps=100"));
  for (const SetFlag& s : sets) {
    if (s.path[0] == "extends")
      fail_at(s.loc, "extends cannot be set with --set: it is resolved before --set applies");
    // `--set name=X` renames the run; `--set name=null` deletes the name: the file's stem.
    if (s.path == std::vector<std::string>{"name"}) named = !s.value.is_null();
  }
  std::map<std::string, Var> vars;
  vars["SPEC_DIR"] = {directory_of(source), {source, 0, 0}, ""};
  if (const SpecNode* node = tree.find("vars")) {
    MapReader r(node, "vars");
    if (r.node())
      for (const SpecNode::Entry& e : r.node()->entries) {
        if (!valid_var_name(e.key))
          fail_at(e.key_loc, str_cat("variable name '", e.key, "' must be letters, digits and _"));
        if (!e.value.is_scalar() && !e.value.is_null())
          fail_at(e.value.loc,
                  str_cat("vars.", e.key, " must be a string, got a ", e.value.kind_name()));
        vars[e.key] = {e.value.is_null() ? "" : e.value.scalar, e.value.loc, ""};
      }
  }
  for (auto& [name, var] : vars) {
    const SourceLocation env_loc{"environment variable " + name, 0, 0};
    const std::string origin = "$" + name + " in the environment";
    if (auto it = options.env.find(name); it != options.env.end()) {
      var = {it->second, env_loc, origin};
    } else if (options.read_environment && name != "SPEC_DIR") {
      if (const char* value = std::getenv(name.c_str())) var = {value, env_loc, origin};
    }
  }
  for (const SetFlag& s : sets) {
    if (s.path[0] != "vars") continue;
    if (s.path.size() != 2 || !(s.value.is_scalar() || s.value.is_null()))
      fail_at(s.loc, "expected --set vars.NAME=value");
    if (!vars.count(s.path[1]))
      fail_at(s.loc, str_cat("no variable '", s.path[1], "' is declared under vars:"));
    vars[s.path[1]] = {s.value.is_null() ? "" : s.value.scalar, s.loc, s.loc.file};
  }
  for (const SetFlag& s : sets) {
    if (s.path[0] == "vars") continue;
    // A null deletes the key, as in a spec that extends another.
    if (s.value.is_null())
      erase_dotted(tree, sweep_aware_path(tree, s.path), s.loc);
    else
      set_dotted(tree, sweep_aware_path(tree, s.path), s.value, s.loc);
  }
  Interpolator interpolate(vars);
  spec.vars = interpolate.resolved();
  for (SpecNode::Entry& e : tree.entries)
    if (e.key != "vars") interpolate.expand_tree(e.value);
  read_name_and_description(tree, source, named, spec);
  spec.resolved = tree.to_json();

  check_spec_keys(tree);  // `stage:` is then not "no tune stage" for sweep.seeds below
  const Sweep sweep = read_sweep(tree.find("sweep"));
  tree.erase("sweep");
  check_sets_against_sweep(sets, sweep);
  if (!sweep.seeds.empty()) {
    const SpecNode* stages = tree.find("stages");
    if (!stages || !stages->find("tune") || stages->find("tune")->is_null())
      fail_at(sweep.seeds_loc, "sweep.seeds sets stages.tune.seed, but the spec has no tune stage");
  }
  for (const SweepAxis* a : sweep.axes())
    if (std::find(sweep.hide.begin(), sweep.hide.end(), a->key) == sweep.hide.end())
      spec.sweep_keys.push_back(a->key);
  spec.plot_x = sweep.x;
  for (const auto& group : sweep.zips) {
    spec.sweep_groups.emplace_back();
    for (const SweepAxis& a : group) spec.sweep_groups.back().push_back(a.key);
  }
  for (const SweepAxis& a : sweep.grid) spec.sweep_groups.push_back({a.key});
  if (!sweep.x.empty() &&
      std::find(sweep.hide.begin(), sweep.hide.end(), sweep.x) != sweep.hide.end())
    fail_at(sweep.loc, str_cat("sweep.x names '", sweep.x, "', which sweep.hide hides"));
  if (!sweep.seeds.empty()) spec.sweep_keys.push_back("seed");

  // Trial ids use each swept key's last component unless two keys share it.
  std::map<std::string, int> last_counts;
  for (const SweepAxis* a : sweep.axes())
    if (std::find(sweep.hide.begin(), sweep.hide.end(), a->key) == sweep.hide.end())
      ++last_counts[a->path.back()];

  std::vector<std::string> warnings;
  const TrialParseContext context{options.check_paths, &warnings};
  std::vector<Point> points = expand(sweep);
  std::vector<std::string> short_ids, full_ids;
  for (const Point& p : points) {
    SpecNode point_tree = tree;
    Trial t;
    std::string short_id, full_id;
    for (const auto& [axis, value] : p.values) {
      set_dotted(point_tree, axis->path, *value, axis->key_loc);
      t.sweep_point.emplace_back(axis->key, value->text());
      if (std::find(sweep.hide.begin(), sweep.hide.end(), axis->key) != sweep.hide.end()) continue;
      const std::string name = last_counts[axis->path.back()] > 1 ? axis->key : axis->path.back();
      short_id += (short_id.empty() ? "" : ",") + name + "=" + id_value(*value, false);
      full_id += (full_id.empty() ? "" : ",") + name + "=" + id_value(*value, true);
    }
    if (p.seed) {
      set_dotted(point_tree, {"stages", "tune", "seed"},
                 SpecNode::make_scalar(std::to_string(*p.seed), sweep.seeds_loc), sweep.seeds_loc);
      t.sweep_point.emplace_back("seed", std::to_string(*p.seed));
      const std::string part = "seed=" + std::to_string(*p.seed);
      short_id += (short_id.empty() ? "" : ",") + part;
      full_id += (full_id.empty() ? "" : ",") + part;
    }
    Trial parsed = parse_trial(point_tree, context);
    parsed.sweep_point = std::move(t.sweep_point);
    fill_hashes(parsed);
    short_ids.push_back(short_id.empty() ? "default" : sanitize_id(short_id));
    full_ids.push_back(full_id.empty() ? "default" : sanitize_id(full_id));
    spec.trials.push_back(std::move(parsed));
  }
  auto unique = [](std::vector<std::string> ids) {
    std::sort(ids.begin(), ids.end());
    return std::adjacent_find(ids.begin(), ids.end()) == ids.end();
  };
  const std::vector<std::string>& ids = unique(short_ids) ? short_ids : full_ids;
  if (!unique(ids)) fail_at(sweep.loc, "the sweep gives two trials the same id");
  for (size_t i = 0; i < spec.trials.size(); ++i) spec.trials[i].id = ids[i];

  std::set<std::string> seen;
  for (const std::string& w : warnings)
    if (seen.insert(w).second) spec.warnings.push_back(w);
  return spec;
}

ExperimentSpec load_spec(const std::string& path, const SpecLoadOptions& options) {
  std::error_code ec;
  SP_CHECK(!fs::is_directory(path, ec), "[spec] ", path,
           " is a directory: expected an experiment's YAML file");
  std::ifstream in(path, std::ios::binary);
  SP_CHECK(in, "[spec] cannot read ", path, ": ", std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  return parse_spec(text.str(), path, options);
}

}  // namespace sp
