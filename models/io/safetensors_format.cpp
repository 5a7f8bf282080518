#include "models/io/safetensors_format.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>
#include <unordered_set>

#include "tensor/error.h"

namespace sp {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; big-endian hosts would need byte swaps");

namespace {

// Not ordered_json: its objects find a key by scanning every key before it, so a header of
// n entries parsed in O(n^2) (80k entries: 21 s; a hostile 100 MB header: hours). Header
// order is kept by DuplicateKeyCheck instead.
using json = nlohmann::json;

// Every dtype the Rust reference (safetensors 0.8) knows, with bits per element.
constexpr SafetensorsDType kDTypes[] = {
    {"BOOL", 8},    {"U8", 8},          {"I8", 8},          {"I16", 16},    {"U16", 16},
    {"F16", 16},    {"BF16", 16},       {"I32", 32},        {"U32", 32},    {"F32", 32},
    {"F64", 64},    {"I64", 64},        {"U64", 64},        {"F8_E4M3", 8}, {"F8_E5M2", 8},
    {"F8_E8M0", 8}, {"F8_E4M3FNUZ", 8}, {"F8_E5M2FNUZ", 8}, {"F6_E2M3", 6}, {"F6_E3M2", 6},
    {"F4", 4},      {"C64", 64},
};

// JSON nests at most 3 levels in a valid header (root / entry / shape); deeper input is
// garbage, refused early so that a hostile header cannot build an arbitrarily deep tree.
constexpr int kMaxJsonDepth = 16;

struct Context {
  const std::string& label;
  template <typename... Args>
  [[noreturn]] void fail(const Args&... args) const {
    ::sp::fail(str_cat("[safetensors] ", label, ": ", args...));
  }
};

// A JSON value for a message, cut short: headers are untrusted and may be huge.
std::string brief(const json& v) {
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  constexpr size_t kMax = 60;
  if (s.size() > kMax) s = s.substr(0, kMax) + "...";
  return s;
}

// A name for a message: quoted, cut short, control bytes escaped.
std::string quote_name(std::string_view name) {
  std::string out = "'";
  constexpr size_t kMax = 80;
  for (size_t i = 0; i < name.size() && i < kMax; ++i) {
    const unsigned char c = static_cast<unsigned char>(name[i]);
    if (c < 0x20 || c == 0x7f) {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (name.size() > kMax) out += "...";
  return out + "'";
}

// The value of a non-negative JSON integer that fits int64, or false.
bool as_index(const json& v, uint64_t& out) {
  if (!v.is_number_unsigned()) return false;  // negatives are number_integer, 1.5 / 1e99 floats
  out = v.get<uint64_t>();
  return out <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string offsets_str(const SafetensorsEntry& e) {
  return str_cat("[", e.begin, ", ", e.end, "]");
}

// Rejects duplicate keys at any level (nlohmann silently keeps the last one) and JSON that
// nests deeper than a header can, and records the top-level keys in header order (json's
// objects sort them).
class DuplicateKeyCheck {
 public:
  explicit DuplicateKeyCheck(const Context& ctx) : ctx_(ctx) {}

  bool operator()(int depth, json::parse_event_t event, json& parsed) {
    if (depth > kMaxJsonDepth)
      ctx_.fail("header JSON nests deeper than ", kMaxJsonDepth, " levels");
    switch (event) {
      case json::parse_event_t::object_start:
        seen_.emplace_back();
        keys_.emplace_back();
        break;
      case json::parse_event_t::object_end:
        seen_.pop_back();
        keys_.pop_back();
        break;
      case json::parse_event_t::key: {
        const std::string& key = parsed.get_ref<const std::string&>();
        if (!seen_.back().insert(key).second) {
          if (seen_.size() == 1)
            ctx_.fail("duplicate tensor name ", quote_name(key), " in the header");
          ctx_.fail("duplicate key ", quote_name(key), " in the header entry ",
                    quote_name(keys_.front()));
        }
        keys_.back() = key;
        if (seen_.size() == 1) top_level_keys_.push_back(key);
        break;
      }
      default: break;
    }
    return true;
  }

  const std::vector<std::string>& top_level_keys() const { return top_level_keys_; }

 private:
  const Context& ctx_;
  std::vector<std::unordered_set<std::string>> seen_;
  std::vector<std::string> keys_;
  std::vector<std::string> top_level_keys_;
};

uint64_t read_u64_le(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

void parse_metadata(const json& value, SafetensorsHeader& out, const Context& ctx) {
  // The reference reader deserialises __metadata__ as an optional map: null is no metadata.
  if (value.is_null()) return;
  if (!value.is_object())
    ctx.fail("__metadata__ must be an object of strings, got ", value.type_name(), " ",
             brief(value));
  for (const auto& [key, v] : value.items()) {
    if (!v.is_string())
      ctx.fail("__metadata__ value for ", quote_name(key), " must be a string, got ", v.type_name(),
               " ", brief(v));
    out.metadata.emplace(key, v.get<std::string>());
  }
}

SafetensorsEntry parse_entry(const std::string& name, const json& value, uint64_t data_bytes,
                             const Context& ctx) {
  const std::string t = str_cat("tensor ", quote_name(name));
  if (!value.is_object())
    ctx.fail(t, " must be an object with dtype, shape and data_offsets, got ", value.type_name(),
             " ", brief(value));
  SafetensorsEntry e;
  e.name = name;

  const auto dtype_it = value.find("dtype");
  if (dtype_it == value.end()) ctx.fail(t, " has no dtype");
  if (!dtype_it->is_string()) ctx.fail(t, " dtype must be a string, got ", brief(*dtype_it));
  e.dtype = dtype_it->get<std::string>();
  const SafetensorsDType* dt = find_safetensors_dtype(e.dtype);
  if (!dt)
    ctx.fail(t, " has unknown dtype ", quote_name(e.dtype), " (known: ", safetensors_dtype_list(),
             ")");
  e.bits = dt->bits;

  const auto shape_it = value.find("shape");
  if (shape_it == value.end()) ctx.fail(t, " has no shape");
  bool shape_ok = shape_it->is_array();
  if (shape_ok) {
    for (const json& d : *shape_it) {
      uint64_t v = 0;
      if (!as_index(d, v)) {
        shape_ok = false;
        break;
      }
      e.shape.push_back(static_cast<int64_t>(v));
    }
  }
  if (!shape_ok)
    ctx.fail(t, " shape must be a list of non-negative integers, got ", brief(*shape_it));

  const auto off_it = value.find("data_offsets");
  if (off_it == value.end()) ctx.fail(t, " has no data_offsets");
  if (!off_it->is_array() || off_it->size() != 2 || !as_index((*off_it)[0], e.begin) ||
      !as_index((*off_it)[1], e.end))
    ctx.fail(t, " data_offsets must be two non-negative integers [begin, end], got ",
             brief(*off_it));
  if (e.end < e.begin) ctx.fail(t, " data_offsets ", offsets_str(e), " end before they begin");
  if (e.end > data_bytes)
    ctx.fail(t, " data_offsets ", offsets_str(e),
             " reach beyond the end of the file: the data buffer holds ", data_bytes, " bytes");

  // Element and bit counts in u64 with overflow checks: shapes are untrusted.
  uint64_t numel = 1;
  for (int64_t d : e.shape) {
    if (__builtin_mul_overflow(numel, static_cast<uint64_t>(d), &numel))
      ctx.fail(t, " shape ", shape_str(e.shape), " has more elements than fit in 64 bits");
  }
  e.numel = numel;
  uint64_t bits = 0;
  if (__builtin_mul_overflow(numel, static_cast<uint64_t>(e.bits), &bits))
    ctx.fail(t, " ", e.dtype, " ", shape_str(e.shape), " needs more bytes than fit in 64 bits");
  if (bits % 8 != 0)
    ctx.fail(t, " ", e.dtype, " ", shape_str(e.shape), " is not a whole number of bytes (", bits,
             " bits)");
  if (e.nbytes() != bits / 8)
    ctx.fail(t, " data_offsets ", offsets_str(e), " hold ", e.nbytes(), " bytes, but ", e.dtype,
             " ", shape_str(e.shape), " needs ", bits / 8);
  return e;
}

// The entries must tile the buffer: sorted by offset, each starts where the previous ended,
// the first at 0, the last at the end of the file.
void check_tiling(const SafetensorsHeader& h, const Context& ctx) {
  std::vector<size_t> order(h.entries.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const SafetensorsEntry& x = h.entries[a];
    const SafetensorsEntry& y = h.entries[b];
    return x.begin != y.begin ? x.begin < y.begin : x.end < y.end;
  });
  uint64_t pos = 0;
  const SafetensorsEntry* prev = nullptr;
  for (size_t i : order) {
    const SafetensorsEntry& e = h.entries[i];
    if (e.begin > pos) {
      if (!prev)
        ctx.fail("tensor ", quote_name(e.name), " data_offsets ", offsets_str(e), " start at ",
                 e.begin, ": the first tensor must start at byte 0 of the data buffer");
      ctx.fail("gap of ", e.begin - pos, " bytes between tensor ", quote_name(prev->name), " ",
               offsets_str(*prev), " and tensor ", quote_name(e.name), " ", offsets_str(e));
    }
    if (e.begin < pos)
      ctx.fail("tensor ", quote_name(e.name), " data_offsets ", offsets_str(e), " overlap tensor ",
               quote_name(prev->name), " ", offsets_str(*prev));
    pos = e.end;
    prev = &e;
  }
  if (pos != h.data_bytes)  // pos < data_bytes: every end was checked against the buffer
    ctx.fail(h.data_bytes - pos, " trailing bytes after the last tensor: tensors end at byte ", pos,
             " of a data buffer of ", h.data_bytes, " bytes");
}

}  // namespace

const SafetensorsDType* find_safetensors_dtype(std::string_view name) {
  for (const SafetensorsDType& d : kDTypes)
    if (name == d.name) return &d;
  return nullptr;
}

std::string safetensors_dtype_list() {
  std::string s;
  for (const SafetensorsDType& d : kDTypes) s += (s.empty() ? "" : ", ") + std::string(d.name);
  return s;
}

SafetensorsHeader parse_safetensors_header(const void* bytes, size_t size,
                                           const std::string& label) {
  const Context ctx{label};
  const auto* p = static_cast<const unsigned char*>(bytes);
  if (size < 8) ctx.fail("file is ", size, " bytes, too short for the 8-byte header length");
  SafetensorsHeader h;
  h.header_bytes = read_u64_le(p);
  if (h.header_bytes > kSafetensorsMaxHeaderBytes)
    ctx.fail("header length ", h.header_bytes, " exceeds the limit of ", kSafetensorsMaxHeaderBytes,
             " bytes");
  if (h.header_bytes > size - 8)
    ctx.fail("header length ", h.header_bytes, " reaches beyond the end of the file (", size,
             " bytes): the file is truncated or not safetensors");
  h.data_start = 8 + h.header_bytes;
  h.data_bytes = size - h.data_start;

  const char* text = reinterpret_cast<const char*>(p + 8);
  // The JSON parser takes a NUL byte for the end of its input, which would let anything
  // after it through; JSON text has none (the Rust safetensors rejects it too).
  if (const void* nul = std::memchr(text, 0, h.header_bytes))
    ctx.fail("header holds a NUL byte at offset ",
             static_cast<const char*>(nul) - text, ": not valid JSON text");
  json root;
  DuplicateKeyCheck check(ctx);
  try {
    root = json::parse(text, text + h.header_bytes, std::ref(check), /*allow_exceptions=*/true);
  } catch (const json::exception& e) {
    ctx.fail("header is not valid JSON: ", parse_error_text(e));
  }
  if (!root.is_object())
    ctx.fail("header must be a JSON object, got ", root.type_name(), " ", brief(root));

  h.entries.reserve(root.size());
  for (const std::string& key : check.top_level_keys()) {
    const json& value = root.at(key);
    if (key == "__metadata__")
      parse_metadata(value, h, ctx);
    else
      h.entries.push_back(parse_entry(key, value, h.data_bytes, ctx));
  }
  check_tiling(h, ctx);
  return h;
}

float f8_e4m3_to_float(uint8_t v) {
  const bool neg = v & 0x80;
  const int exp = (v >> 3) & 0xf;
  const int man = v & 0x7;
  float r;
  if (exp == 0xf && man == 0x7)
    r = std::numeric_limits<float>::quiet_NaN();
  else if (exp == 0)
    r = std::ldexp(static_cast<float>(man), -9);  // subnormal: man / 8 * 2^-6
  else
    r = std::ldexp(static_cast<float>(8 + man), exp - 10);  // (1 + man / 8) * 2^(exp - 7)
  return neg ? -r : r;
}

float f8_e5m2_to_float(uint8_t v) {
  // E5M2 is the upper byte of an IEEE binary16: 5 exponent bits (bias 15), 2 mantissa bits.
  const bool neg = v & 0x80;
  const int exp = (v >> 2) & 0x1f;
  const int man = v & 0x3;
  float r;
  if (exp == 0x1f)
    r = man ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
  else if (exp == 0)
    r = std::ldexp(static_cast<float>(man), -16);  // man / 4 * 2^-14
  else
    r = std::ldexp(static_cast<float>(4 + man), exp - 17);  // (1 + man / 4) * 2^(exp - 15)
  return neg ? -r : r;
}

}  // namespace sp
