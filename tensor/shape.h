#pragma once
// Shape: a small inline vector of dims (no heap), also used for strides.
#include <array>
#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <string>
#include <vector>

#include "tensor/error.h"

namespace sp {

inline constexpr int kMaxDims = 8;

class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims) { assign(dims.begin(), dims.end()); }
  explicit Shape(const std::vector<int64_t>& dims) { assign(dims.begin(), dims.end()); }
  template <typename It>
  Shape(It first, It last) { assign(first, last); }

  int size() const { return n_; }
  bool empty() const { return n_ == 0; }
  int64_t operator[](int i) const { return d_[i]; }
  int64_t& operator[](int i) { return d_[i]; }
  const int64_t* begin() const { return d_.data(); }
  const int64_t* end() const { return d_.data() + n_; }
  int64_t* begin() { return d_.data(); }
  int64_t* end() { return d_.data() + n_; }
  const int64_t* data() const { return d_.data(); }
  int64_t back() const { return d_[n_ - 1]; }
  int64_t& back() { return d_[n_ - 1]; }

  void push_back(int64_t v) {
    SP_CHECK(n_ < kMaxDims, "[shape] more than ", kMaxDims, " dims");
    d_[n_++] = v;
  }
  void pop_back() { erase(n_ - 1); }
  void insert(int pos, int64_t v) {
    SP_CHECK(n_ < kMaxDims, "[shape] more than ", kMaxDims, " dims");
    for (int i = n_; i > pos; --i) d_[i] = d_[i - 1];
    d_[pos] = v;
    ++n_;
  }
  void erase(int pos) {
    SP_CHECK(pos >= 0 && pos < n_, "[shape] no dim ", pos, " to remove from a shape of ", n_,
             " dims");
    for (int i = pos; i + 1 < n_; ++i) d_[i] = d_[i + 1];
    d_[--n_] = 0;
  }
  void resize(int n, int64_t fill = 0) {
    SP_CHECK(n <= kMaxDims, "[shape] more than ", kMaxDims, " dims");
    for (int i = n_; i < n; ++i) d_[i] = fill;
    n_ = n;
  }

  // Product of all dims (1 for a scalar).
  int64_t numel() const {
    // Over every slot, the unused ones as 1: gcc 12 (-march=znver3) warns that a loop to n_
    // may read an uninitialised slot of a temporary Shape, which it cannot.
    int64_t p = 1;
    for (int i = 0; i < kMaxDims; ++i) p *= i < n_ ? d_[i] : 1;
    return p;
  }
  std::vector<int64_t> vec() const { return {begin(), end()}; }
  std::string str() const;

  friend bool operator==(const Shape& a, const Shape& b) {
    if (a.n_ != b.n_) return false;
    for (int i = 0; i < a.n_; ++i)
      if (a.d_[i] != b.d_[i]) return false;
    return true;
  }
  friend bool operator!=(const Shape& a, const Shape& b) { return !(a == b); }

 private:
  template <typename It>
  void assign(It first, It last) {
    n_ = 0;
    for (; first != last; ++first) push_back(static_cast<int64_t>(*first));
  }
  std::array<int64_t, kMaxDims> d_{};
  int n_ = 0;
};

std::ostream& operator<<(std::ostream& os, const Shape& s);

// Row-major strides (in elements) for a shape.
Shape contiguous_strides(const Shape& shape);

// Normalises a possibly negative dim against rank; throws naming op when out of range.
int wrap_dim(int64_t dim, int rank, const char* op);

// The broadcast shape of a and b (numpy rules); throws naming op when incompatible.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

}  // namespace sp
