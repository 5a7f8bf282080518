#include "models/tokenizer/charsmap_check.h"

#include <cstdint>
#include <cstring>
#include <optional>
#include <vector>

#include "tensor/error.h"

namespace sp {
namespace {

// --- the protobuf wire format, as far as finding a bytes field needs --------------------------

bool read_varint(std::string_view& s, uint64_t& value) {
  value = 0;
  for (int shift = 0; shift < 64 && !s.empty(); shift += 7) {
    const auto byte = static_cast<uint8_t>(s.front());
    s.remove_prefix(1);
    value |= static_cast<uint64_t>(byte & 0x7F) << shift;
    if (!(byte & 0x80)) return true;
  }
  return false;
}

struct Field {
  uint64_t number = 0;
  std::string_view payload;  // length-delimited fields only
};

// The next field of a message, or nullopt at its end; throws on bytes that are not one
// (groups, long gone from protobuf, are skipped as a whole).
std::optional<Field> next_field(std::string_view& msg, const std::string& name) {
  if (msg.empty()) return std::nullopt;
  auto malformed = [&] { fail(str_cat("[tokenizer] '", name, "': its model is malformed")); };
  uint64_t tag = 0;
  if (!read_varint(msg, tag)) malformed();
  Field f{tag >> 3, {}};
  uint64_t v = 0;
  switch (tag & 7) {
    case 0:
      if (!read_varint(msg, v)) malformed();
      break;
    case 1:
    case 5: {
      const size_t n = (tag & 7) == 1 ? 8 : 4;
      if (msg.size() < n) malformed();
      msg.remove_prefix(n);
      break;
    }
    case 2:
      if (!read_varint(msg, v) || v > msg.size()) malformed();
      f.payload = msg.substr(0, v);
      msg.remove_prefix(v);
      break;
    case 3:  // a group: fields up to its end tag
      while (true) {
        std::string_view before = msg;
        uint64_t inner = 0;
        if (!read_varint(before, inner)) malformed();
        if ((inner & 7) == 4) {
          msg = before;
          break;
        }
        if (!next_field(msg, name)) malformed();
      }
      break;
    default: malformed();
  }
  return f;
}

// precompiled_charsmap (field 2) of the NormalizerSpec in field spec_field of a ModelProto,
// with protobuf's merge of repeated occurrences: the last one given wins.
std::string_view charsmap_of(std::string_view model, uint64_t spec_field, const std::string& name) {
  std::string_view charsmap;
  while (auto f = next_field(model, name)) {
    if (f->number != spec_field) continue;
    std::string_view spec = f->payload;
    while (auto g = next_field(spec, name))
      if (g->number == 2) charsmap = g->payload;
  }
  return charsmap;
}

// --- darts-clone's double array, as sentencepiece's prefix search reads it ----------------------

uint32_t le32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

bool has_leaf(uint32_t unit) { return (unit >> 8) & 1; }
uint32_t leaf_value(uint32_t unit) { return unit & 0x7FFFFFFFu; }
uint32_t label(uint32_t unit) { return unit & (0x80000000u | 0xFFu); }
uint32_t offset(uint32_t unit) { return (unit >> 10) << ((unit & (1u << 9)) >> 6); }

}  // namespace

std::string precompiled_charsmap_problem(std::string_view blob) {
  if (blob.size() <= 4)
    return str_cat("it has ", blob.size(), " bytes, too few for a trie size and a trie");
  const uint64_t trie_bytes = le32(blob.data());
  if (trie_bytes + 4 > blob.size())
    return str_cat("its trie of ", trie_bytes, " bytes runs past the blob's ", blob.size() - 4,
                   " bytes after the size");
  const uint64_t n = trie_bytes / 4;
  if (n == 0) return "its trie has no units";
  const char* units = blob.data() + 4;
  auto unit = [&](uint64_t i) { return le32(units + 4 * i); };
  const std::string_view strings = blob.substr(4 + trie_bytes);

  // From the root, every node a prefix search can step to: the children of node p sit at
  // base ^ c for each byte c (base = p ^ offset), and a child whose label is c is taken;
  // a child with a leaf has its replacement's offset in the unit at its own base.
  std::vector<uint8_t> seen(n, 0);
  std::vector<uint64_t> todo = {0};
  seen[0] = 1;
  while (!todo.empty()) {
    const uint64_t p = todo.back();
    todo.pop_back();
    const uint64_t base = p ^ offset(unit(p));
    if ((base | 0xFF) >= n)
      return str_cat("node ", p, " has its children at ", base, ", outside the trie's ", n,
                     " units");
    for (uint32_t c = 0; c < 256; ++c) {
      const uint64_t q = base ^ c;
      const uint32_t u = unit(q);
      if (label(u) != c) continue;
      if (has_leaf(u)) {
        const uint64_t leaf = q ^ offset(u);
        if (leaf >= n)
          return str_cat("node ", q, " has its leaf at ", leaf, ", outside the trie's ", n,
                         " units");
        const uint32_t at = leaf_value(unit(leaf));
        if (at >= strings.size() ||
            std::memchr(strings.data() + at, '\0', strings.size() - at) == nullptr)
          return str_cat("node ", q, "'s replacement at byte ", at,
                         " does not end inside the replacement strings (", strings.size(),
                         " bytes)");
      }
      if (!seen[q]) {
        seen[q] = 1;
        todo.push_back(q);
      }
    }
  }
  return "";
}

void check_precompiled_charsmaps(std::string_view model_proto, const std::string& name) {
  // ModelProto: normalizer_spec = 3, denormalizer_spec = 5.
  for (const auto& [field, spec] : {std::pair<uint64_t, const char*>{3, "normalizer_spec"},
                                    std::pair<uint64_t, const char*>{5, "denormalizer_spec"}}) {
    const std::string_view charsmap = charsmap_of(model_proto, field, name);
    if (charsmap.empty()) continue;
    const std::string problem = precompiled_charsmap_problem(charsmap);
    SP_CHECK(problem.empty(), "[tokenizer] '", name, "': its ", spec,
             "'s precompiled_charsmap is corrupt: ", problem);
  }
}

}  // namespace sp
