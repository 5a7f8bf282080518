#pragma once
// Element types and the scalar conversions between them.
#include <cstdint>
#include <cstring>
#include <string>

namespace sp {

enum class DType : uint8_t { f32, bf16, f16, f64, i32, i64, boolean };

inline constexpr DType kAllDTypes[] = {DType::f32, DType::bf16, DType::f16, DType::f64,
                                       DType::i32, DType::i64,  DType::boolean};

constexpr int64_t dtype_size(DType t) {
  switch (t) {
    case DType::f32: return 4;
    case DType::bf16: return 2;
    case DType::f16: return 2;
    case DType::f64: return 8;
    case DType::i32: return 4;
    case DType::i64: return 8;
    case DType::boolean: return 1;
  }
  return 0;
}

constexpr bool is_floating(DType t) {
  return t == DType::f32 || t == DType::bf16 || t == DType::f16 || t == DType::f64;
}

const char* dtype_name(DType t);     // "f32", "bf16", ...
DType dtype_from_name(const std::string& name);  // throws sp::Error on an unknown name

// bfloat16: the top 16 bits of an IEEE float32, round-to-nearest-even on conversion.
struct bf16 {
  uint16_t bits = 0;
  bf16() = default;
  explicit bf16(float f) : bits(from_float(f)) {}
  operator float() const { return to_float(bits); }

  static inline uint16_t from_float(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // quiet NaN
    u += 0x7fffu + ((u >> 16) & 1u);
    return static_cast<uint16_t>(u >> 16);
  }
  static inline float to_float(uint16_t b) {
    uint32_t u = static_cast<uint32_t>(b) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
};

// IEEE half precision. The compiler's _Float16 does the rounding.
struct f16 {
  uint16_t bits = 0;
  f16() = default;
  explicit f16(float f) {
    _Float16 h = static_cast<_Float16>(f);
    std::memcpy(&bits, &h, 2);
  }
  operator float() const {
    _Float16 h;
    std::memcpy(&h, &bits, 2);
    return static_cast<float>(h);
  }
};

template <typename T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::f32; };
template <> struct dtype_of<bf16> { static constexpr DType value = DType::bf16; };
template <> struct dtype_of<f16> { static constexpr DType value = DType::f16; };
template <> struct dtype_of<double> { static constexpr DType value = DType::f64; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::i32; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::i64; };
template <> struct dtype_of<bool> { static constexpr DType value = DType::boolean; };

// The type arithmetic on T is carried out in: f32 for the 16-bit floats.
template <typename T> struct compute_type { using type = T; };
template <> struct compute_type<bf16> { using type = float; };
template <> struct compute_type<f16> { using type = float; };
template <typename T> using compute_t = typename compute_type<T>::type;

}  // namespace sp

// SP_DISPATCH_FLOAT(dtype, "op", [&]<typename T>() { ... }) calls the lambda with T set to
// the C++ type of a floating dtype; other dtypes throw naming the op.
#define SP_DISPATCH_FLOAT(dt, op, ...)                                                   \
  [&]() {                                                                               \
    auto&& sp_fn_ = __VA_ARGS__;                                                        \
    switch (dt) {                                                                       \
      case ::sp::DType::f32: return sp_fn_.template operator()<float>();                 \
      case ::sp::DType::bf16: return sp_fn_.template operator()<::sp::bf16>();           \
      case ::sp::DType::f16: return sp_fn_.template operator()<::sp::f16>();             \
      case ::sp::DType::f64: return sp_fn_.template operator()<double>();                \
      default:                                                                          \
        ::sp::fail(::sp::str_cat("[", op, "] unsupported dtype ", ::sp::dtype_name(dt), \
                                 ": expected a floating dtype (f32, bf16, f16, f64)"));  \
    }                                                                                   \
  }()

// SP_DISPATCH_ALL: every dtype.
#define SP_DISPATCH_ALL(dt, op, ...)                                           \
  [&]() {                                                                     \
    auto&& sp_fn_ = __VA_ARGS__;                                              \
    switch (dt) {                                                             \
      case ::sp::DType::f32: return sp_fn_.template operator()<float>();       \
      case ::sp::DType::bf16: return sp_fn_.template operator()<::sp::bf16>(); \
      case ::sp::DType::f16: return sp_fn_.template operator()<::sp::f16>();   \
      case ::sp::DType::f64: return sp_fn_.template operator()<double>();      \
      case ::sp::DType::i32: return sp_fn_.template operator()<int32_t>();     \
      case ::sp::DType::i64: return sp_fn_.template operator()<int64_t>();     \
      case ::sp::DType::boolean: return sp_fn_.template operator()<bool>();    \
    }                                                                         \
    ::sp::fail(::sp::str_cat("[", op, "] unknown dtype"));                    \
  }()
