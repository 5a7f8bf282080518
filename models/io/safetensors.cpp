#include "models/io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>
#include <unordered_map>
#include <unordered_set>

#include "models/io/atomic_file.h"
#include "models/io/mapped_file.h"
#include "tensor/kernels.h"

namespace sp {

struct SafetensorsFile::State {
  std::string path;
  std::shared_ptr<void> owner;  // the mapping or the byte vector; zero-copy tensors share it
  const uint8_t* base = nullptr;
  size_t size = 0;
  SafetensorsHeader header;
  std::unordered_map<std::string, size_t> index;  // name -> header.entries position
};

namespace {

template <typename... Args>
[[noreturn]] void fail_at(const std::string& path, const Args&... args) {
  fail(str_cat("[safetensors] ", path, ": ", args...));
}

std::shared_ptr<SafetensorsFile::State> new_state(std::string path, std::shared_ptr<void> owner,
                                                  const void* base, size_t size) {
  auto s = std::make_shared<SafetensorsFile::State>();
  s->path = std::move(path);
  s->owner = std::move(owner);
  s->base = static_cast<const uint8_t*>(base);
  s->size = size;
  return s;
}

void index_entries(SafetensorsFile::State& s) {
  s.header = parse_safetensors_header(s.base, s.size, s.path);
  s.index.reserve(s.header.entries.size());
  for (size_t i = 0; i < s.header.entries.size(); ++i) s.index.emplace(s.header.entries[i].name, i);
}

bool all_zero_or_one(const uint8_t* p, uint64_t n) {
  uint8_t acc = 0;
  for (uint64_t i = 0; i < n; ++i) acc |= static_cast<uint8_t>(p[i] & 0xfe);
  return acc == 0;
}

// Reads element i of a little-endian integer array that may be misaligned.
template <typename T>
T load_le(const uint8_t* p, uint64_t i) {
  T v;
  std::memcpy(&v, p + i * sizeof(T), sizeof(T));
  return v;
}

// Widens the integer types softprompt lacks to i32 / i64.
template <typename Src, typename Dst>
Tensor widen(const uint8_t* src, uint64_t n, const Shape& shape, DType dst_dtype) {
  Tensor t = Tensor::empty(shape, dst_dtype);
  Dst* out = static_cast<Dst*>(t.data_ptr());
  for (uint64_t i = 0; i < n; ++i) out[i] = static_cast<Dst>(load_le<Src>(src, i));
  return t;
}

// Loads dtypes without a softprompt twin into the nearest one that holds them exactly.
Tensor decode_foreign(const std::string& path, const SafetensorsEntry& e, const uint8_t* src,
                      const Shape& shape) {
  const uint64_t n = e.numel;
  const std::string& d = e.dtype;
  if (d == "U8") return widen<uint8_t, int32_t>(src, n, shape, DType::i32);
  if (d == "I8") return widen<int8_t, int32_t>(src, n, shape, DType::i32);
  if (d == "I16") return widen<int16_t, int32_t>(src, n, shape, DType::i32);
  if (d == "U16") return widen<uint16_t, int32_t>(src, n, shape, DType::i32);
  if (d == "U32") return widen<uint32_t, int64_t>(src, n, shape, DType::i64);
  if (d == "U64") {
    for (uint64_t i = 0; i < n; ++i) {
      const uint64_t v = load_le<uint64_t>(src, i);
      if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        fail_at(path, "tensor '", e.name, "' (U64) holds ", v, " at element ", i,
                ", which does not fit i64");
    }
    return widen<uint64_t, int64_t>(src, n, shape, DType::i64);
  }
  if (d == "F8_E4M3" || d == "F8_E5M2") {
    float table[256];
    for (int b = 0; b < 256; ++b)
      table[b] = d == "F8_E4M3" ? f8_e4m3_to_float(static_cast<uint8_t>(b))
                                : f8_e5m2_to_float(static_cast<uint8_t>(b));
    Tensor t = Tensor::empty(shape, DType::f32);
    float* out = static_cast<float*>(t.data_ptr());
    for (uint64_t i = 0; i < n; ++i) out[i] = table[src[i]];
    return t;
  }
  fail_at(path, "tensor '", e.name, "' has dtype ", d, ", which softprompt cannot load");
}

}  // namespace

std::optional<DType> native_dtype(std::string_view name) {
  if (name == "F32") return DType::f32;
  if (name == "BF16") return DType::bf16;
  if (name == "F16") return DType::f16;
  if (name == "F64") return DType::f64;
  if (name == "I32") return DType::i32;
  if (name == "I64") return DType::i64;
  if (name == "BOOL") return DType::boolean;
  return std::nullopt;
}

bool is_floating_dtype_name(std::string_view name) {
  return name == "F64" || name == "F32" || name == "F16" || name == "BF16" || name == "F8_E4M3" ||
         name == "F8_E5M2";
}

const char* safetensors_dtype_name(DType dtype) {
  switch (dtype) {
    case DType::f32: return "F32";
    case DType::bf16: return "BF16";
    case DType::f16: return "F16";
    case DType::f64: return "F64";
    case DType::i32: return "I32";
    case DType::i64: return "I64";
    case DType::boolean: return "BOOL";
  }
  fail("[safetensors] unknown dtype");
}

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  std::shared_ptr<MappedFile> file = MappedFile::open(path, "[safetensors]");
  if (file->size() < 8)
    fail_at(path, "file is ", file->size(), " bytes, too short for the 8-byte header length");
  const uint8_t* base = file->data();
  const size_t size = file->size();
  auto s = new_state(path, std::move(file), base, size);
  index_entries(*s);
  return SafetensorsFile(std::move(s));
}

SafetensorsFile SafetensorsFile::from_bytes(std::vector<uint8_t> bytes, const std::string& label) {
  auto owned = std::make_shared<std::vector<uint8_t>>(std::move(bytes));
  const void* base = owned->data();
  const size_t size = owned->size();
  auto s = new_state(label, std::move(owned), base, size);
  index_entries(*s);
  return SafetensorsFile(std::move(s));
}

const std::string& SafetensorsFile::path() const { return state_->path; }

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(state_->header.entries.size());
  for (const SafetensorsEntry& e : state_->header.entries) out.push_back(e.name);
  return out;
}

size_t SafetensorsFile::size() const { return state_->header.entries.size(); }

bool SafetensorsFile::contains(const std::string& name) const {
  return state_->index.count(name) > 0;
}

const SafetensorsEntry& SafetensorsFile::info(const std::string& name) const {
  const auto it = state_->index.find(name);
  if (it == state_->index.end()) {
    std::string some;
    constexpr size_t kShown = 8;
    const auto& entries = state_->header.entries;
    for (size_t i = 0; i < entries.size() && i < kShown; ++i)
      some += (i ? ", " : "") + entries[i].name;
    if (entries.size() > kShown) some += ", ...";
    fail_at(state_->path, "no tensor named '", name, "' (the file holds ", entries.size(),
            " tensors: ", some, ")");
  }
  return state_->header.entries[it->second];
}

const std::map<std::string, std::string>& SafetensorsFile::metadata() const {
  return state_->header.metadata;
}

const SafetensorsHeader& SafetensorsFile::header() const { return state_->header; }

std::span<const uint8_t> SafetensorsFile::bytes(const std::string& name) const {
  const SafetensorsEntry& e = info(name);
  return {state_->base + state_->header.data_start + e.begin, static_cast<size_t>(e.nbytes())};
}

Tensor SafetensorsFile::tensor(const std::string& name, std::optional<DType> want,
                               bool zero_copy) const {
  const State& s = *state_;
  const SafetensorsEntry& e = info(name);
  if (e.shape.size() > static_cast<size_t>(kMaxDims))
    fail_at(s.path, "tensor '", name, "' has ", e.shape.size(),
            " dims; softprompt tensors have at most ", kMaxDims);
  // Row-major strides multiply the non-zero dims: they must fit int64 even when a zero dim
  // makes the tensor empty.
  uint64_t span = 1;
  for (int64_t d : e.shape) {
    if (d != 0 && (__builtin_mul_overflow(span, static_cast<uint64_t>(d), &span) ||
                   span > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())))
      fail_at(s.path, "tensor '", name, "' has dims too large for 64-bit strides");
  }
  const Shape shape(e.shape.begin(), e.shape.end());
  const uint8_t* src = s.base + s.header.data_start + e.begin;

  const std::optional<DType> stored = native_dtype(e.dtype);
  if (!stored) {
    Tensor t = decode_foreign(s.path, e, src, shape);
    return want ? kernels::cast(t, *want) : t;
  }
  const DType st = *stored;
  const DType target = want.value_or(st);
  // A C++ bool other than 0 or 1 is undefined behaviour: such bytes (Python's writer lets
  // them through) are normalised in a copy.
  const bool valid_bools = st != DType::boolean || all_zero_or_one(src, e.nbytes());
  const bool aligned =
      reinterpret_cast<uintptr_t>(src) % static_cast<uintptr_t>(dtype_size(st)) == 0;

  Tensor source;
  if (aligned && valid_bools && (zero_copy || target != st)) {
    // A view of the mapping: the result itself (zero_copy) or the input of one cast pass.
    auto storage = std::make_shared<Storage>(
        const_cast<uint8_t*>(src), static_cast<size_t>(e.nbytes()), Device::cpu(), s.owner);
    source = Tensor(std::move(storage), shape, contiguous_strides(shape), 0, st);
  } else {
    source = Tensor::empty(shape, st);
    auto* dst = static_cast<uint8_t*>(source.data_ptr());
    if (st == DType::boolean && !valid_bools) {
      for (uint64_t i = 0; i < e.nbytes(); ++i) dst[i] = src[i] != 0;
    } else if (e.nbytes() > 0) {
      std::memcpy(dst, src, static_cast<size_t>(e.nbytes()));
    }
  }
  return target == st ? source : kernels::cast(source, target);
}

// --- writing ---------------------------------------------------------------------------

namespace {

struct WritePlan {
  std::string header;        // padded JSON
  std::vector<Tensor> data;  // contiguous CPU tensors in buffer order
  uint64_t data_bytes = 0;
};

WritePlan plan_write(const std::vector<std::pair<std::string, Tensor>>& tensors,
                     const std::map<std::string, std::string>& metadata, const std::string& label) {
  using json = nlohmann::ordered_json;
  std::unordered_set<std::string> seen;
  std::vector<Tensor> cpu(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& [name, t] = tensors[i];
    if (name.empty()) fail_at(label, "tensor ", i, " has an empty name");
    if (name == "__metadata__")
      fail_at(label, "'__metadata__' is reserved and cannot name a tensor");
    if (!seen.insert(name).second) fail_at(label, "duplicate tensor name '", name, "'");
    if (!t.defined()) fail_at(label, "tensor '", name, "' is undefined");
    cpu[i] = kernels::contiguous(kernels::to_device(t, Device::cpu()));
  }

  // Buffer order: larger elements first keeps every tensor aligned for its type, since the
  // buffer itself starts at a multiple of 8. Header keys keep the caller's order.
  std::vector<size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return cpu[a].element_size() > cpu[b].element_size();
  });
  WritePlan plan;
  std::vector<std::pair<uint64_t, uint64_t>> offsets(tensors.size());
  for (size_t i : order) {
    const uint64_t n = static_cast<uint64_t>(cpu[i].nbytes());
    offsets[i] = {plan.data_bytes, plan.data_bytes + n};
    plan.data_bytes += n;
    plan.data.push_back(cpu[i]);
  }

  json header = json::object();
  std::map<std::string, std::string> meta = metadata;
  meta.emplace("format", "pt");
  header["__metadata__"] = meta;
  for (size_t i = 0; i < tensors.size(); ++i) {
    json entry = json::object();
    entry["dtype"] = safetensors_dtype_name(cpu[i].dtype());
    entry["shape"] = cpu[i].shape().vec();
    entry["data_offsets"] = {offsets[i].first, offsets[i].second};
    header[tensors[i].first] = std::move(entry);
  }
  try {
    plan.header = header.dump();
  } catch (const nlohmann::json::exception& e) {
    fail_at(label, "cannot write the header (are the names UTF-8?): ", e.what());
  }
  plan.header.append((8 - plan.header.size() % 8) % 8, ' ');
  if (plan.header.size() > kSafetensorsMaxHeaderBytes)
    fail_at(label, "header of ", plan.header.size(), " bytes exceeds the limit of ",
            kSafetensorsMaxHeaderBytes);
  return plan;
}

void put_u64_le(uint64_t v, uint8_t out[8]) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(v >> (8 * i));
}

}  // namespace

std::vector<uint8_t> serialize_safetensors(
    const std::vector<std::pair<std::string, Tensor>>& tensors,
    const std::map<std::string, std::string>& metadata) {
  const WritePlan plan = plan_write(tensors, metadata, "<memory>");
  std::vector<uint8_t> out(8 + plan.header.size() + plan.data_bytes);
  put_u64_le(plan.header.size(), out.data());
  std::memcpy(out.data() + 8, plan.header.data(), plan.header.size());
  size_t pos = 8 + plan.header.size();
  for (const Tensor& t : plan.data) {
    const size_t n = static_cast<size_t>(t.nbytes());
    if (n) std::memcpy(out.data() + pos, t.data_ptr(), n);
    pos += n;
  }
  return out;
}

void write_safetensors(AtomicFile& file, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  const WritePlan plan = plan_write(tensors, metadata, file.path());
  uint8_t len[8];
  put_u64_le(plan.header.size(), len);
  file.write(len, 8);
  file.write(plan.header);
  for (const Tensor& t : plan.data)
    if (t.nbytes()) file.write(t.data_ptr(), static_cast<size_t>(t.nbytes()));
}

void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  AtomicFile file(path, "[safetensors]");
  write_safetensors(file, tensors, metadata);
  file.commit();
}

}  // namespace sp
