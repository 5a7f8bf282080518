#include "tensor/tensor.h"

#include <cmath>
#include <cstring>
#include <functional>
#include <iomanip>
#include <sstream>

#include "tensor/cuda_emulation.h"
#include "tensor/kernels.h"

namespace sp {

Tensor::Tensor(std::shared_ptr<Storage> storage, const Shape& shape, const Shape& strides,
               int64_t offset, DType dtype)
    : storage_(std::move(storage)),
      shape_(shape),
      strides_(strides),
      offset_(offset),
      dtype_(dtype) {
  SP_CHECK(shape.size() == strides.size(), "[tensor] shape ", shape, " and strides ", strides,
           " differ in rank");
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  bool has_zero = false;
  for (int64_t d : shape) {
    SP_CHECK(d >= 0, "[empty] negative dim in shape ", shape);
    has_zero = has_zero || d == 0;
  }
  // Shape::numel() wraps silently: a huge shape would get a tiny (or empty) storage.
  int64_t nbytes = dtype_size(dtype);
  bool overflow = false;
  if (has_zero) {
    nbytes = 0;
  } else {
    for (int64_t d : shape) overflow = overflow || __builtin_mul_overflow(nbytes, d, &nbytes);
  }
  SP_CHECK(!overflow, "[empty] shape ", shape, " of ", dtype_name(dtype),
           " is too large: its byte count overflows 64 bits");
  auto storage = std::make_shared<Storage>(static_cast<size_t>(nbytes), device);
  return Tensor(std::move(storage), shape, contiguous_strides(shape), 0, dtype);
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  kernels::fill_(t, value);
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  return full(shape, 0.0, dtype, device);
}

Tensor Tensor::ones(const Shape& shape, DType dtype, Device device) {
  return full(shape, 1.0, dtype, device);
}

Tensor Tensor::scalar(double value, DType dtype, Device device) {
  return full(Shape{}, value, dtype, device);
}

Tensor Tensor::arange(int64_t n, DType dtype, Device device) {
  SP_CHECK(n >= 0, "[arange] negative length ", n);
  Tensor t = empty(Shape{n}, DType::i64);
  int64_t* p = t.data<int64_t>();
  for (int64_t i = 0; i < n; ++i) p[i] = i;
  return kernels::to_device(kernels::cast(t, dtype), device);
}

template <typename T>
Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape) {
  SP_CHECK(static_cast<int64_t>(values.size()) == shape.numel(), "[from_vector] ", values.size(),
           " values do not fill shape ", shape, " (", shape.numel(), " elements)");
  Tensor t = empty(shape, dtype_of<T>::value);
  T* p = t.data<T>();
  for (size_t i = 0; i < values.size(); ++i) p[i] = values[i];
  return t;
}

template <typename T>
Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape, DType dtype) {
  return kernels::cast(from_vector(values, shape), dtype);
}

#define SP_INSTANTIATE_FROM_VECTOR(T)                                          \
  template Tensor Tensor::from_vector<T>(const std::vector<T>&, const Shape&); \
  template Tensor Tensor::from_vector<T>(const std::vector<T>&, const Shape&, DType);
SP_INSTANTIATE_FROM_VECTOR(float)
SP_INSTANTIATE_FROM_VECTOR(double)
SP_INSTANTIATE_FROM_VECTOR(int32_t)
SP_INSTANTIATE_FROM_VECTOR(int64_t)
SP_INSTANTIATE_FROM_VECTOR(bool)
SP_INSTANTIATE_FROM_VECTOR(bf16)
SP_INSTANTIATE_FROM_VECTOR(f16)
#undef SP_INSTANTIATE_FROM_VECTOR

// wrap_dim accepts dim 0 and -1 for a scalar (as ops that reduce over "all" dims need), but
// a scalar has no size or stride to return.
int64_t Tensor::size(int64_t dim) const {
  SP_CHECK(this->dim() > 0, "[size] dim ", dim, " is out of range for a tensor of rank 0");
  return shape_[wrap_dim(dim, this->dim(), "size")];
}
int64_t Tensor::stride(int64_t dim) const {
  SP_CHECK(this->dim() > 0, "[stride] dim ", dim, " is out of range for a tensor of rank 0");
  return strides_[wrap_dim(dim, this->dim(), "stride")];
}

Device Tensor::device() const { return storage_ ? storage_->device() : Device::cpu(); }

bool Tensor::is_contiguous() const {
  // An empty tensor has no element to misplace; without this, empty(Shape{3, 0}) itself
  // (strides [1, 1]) would not count as contiguous and kernels checking layouts would throw.
  if (numel() == 0) return true;
  int64_t expected = 1;
  for (int i = dim() - 1; i >= 0; --i) {
    if (shape_[i] == 1) continue;
    if (strides_[i] != expected) return false;
    expected *= shape_[i];
  }
  return true;
}

bool Tensor::is_same(const Tensor& other) const {
  return storage_ == other.storage_ && offset_ == other.offset_ && shape_ == other.shape_ &&
         strides_ == other.strides_ && dtype_ == other.dtype_;
}

void* Tensor::data_ptr() const {
  SP_CHECK(defined(), "[data_ptr] undefined tensor");
  // On a GPU the host cannot dereference device memory; the emulation must not either
  // (the CUDA backend itself hands device pointers to its kernels).
  SP_CHECK(device().is_cpu() || !cuda_emulated() || emulated_kernel_running(),
           "[data_ptr] tensor is on ", device().str(),
           " (emulated): only a primitive may touch its memory");
  return static_cast<char*>(storage_->data()) + offset_ * element_size();
}

template <typename T>
T* Tensor::data() const {
  SP_CHECK(defined(), "[data] undefined tensor");
  SP_CHECK(dtype_ == dtype_of<T>::value, "[data] tensor is ", dtype_name(dtype_), ", asked for ",
           dtype_name(dtype_of<T>::value));
  SP_CHECK(device().is_cpu() || emulated_kernel_running(), "[data] tensor is on ", device().str(),
           ": move it to the CPU first");
  return static_cast<T*>(data_ptr());
}

template <typename T>
T Tensor::item() const {
  SP_CHECK(defined(), "[item] undefined tensor");
  SP_CHECK(numel() == 1, "[item] tensor has ", numel(), " elements, shape ", shape_,
           ": item() needs exactly one");
  return to_vector<T>()[0];
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
  SP_CHECK(defined(), "[to_vector] undefined tensor");
  Tensor host = kernels::contiguous(
      kernels::cast(kernels::to_device(*this, Device::cpu()), dtype_of<T>::value));
  const T* p = host.data<T>();
  return std::vector<T>(p, p + host.numel());
}

#define SP_INSTANTIATE_ACCESS(T)       \
  template T* Tensor::data<T>() const; \
  template T Tensor::item<T>() const;  \
  template std::vector<T> Tensor::to_vector<T>() const;
SP_INSTANTIATE_ACCESS(float)
SP_INSTANTIATE_ACCESS(double)
SP_INSTANTIATE_ACCESS(int32_t)
SP_INSTANTIATE_ACCESS(int64_t)
SP_INSTANTIATE_ACCESS(bf16)
SP_INSTANTIATE_ACCESS(f16)
#undef SP_INSTANTIATE_ACCESS
template bool* Tensor::data<bool>() const;
template <>
bool Tensor::item<bool>() const {
  return item<double>() != 0;
}
template <>
std::vector<bool> Tensor::to_vector<bool>() const {
  Tensor host =
      kernels::contiguous(kernels::cast(kernels::to_device(*this, Device::cpu()), DType::boolean));
  const bool* p = host.data<bool>();
  return std::vector<bool>(p, p + host.numel());
}

Tensor Tensor::as_strided(const Shape& shape, const Shape& strides, int64_t offset) const {
  SP_CHECK(defined(), "[as_strided] undefined tensor");
  SP_CHECK(shape.size() == strides.size(), "[as_strided] shape ", shape, " and strides ", strides,
           " differ in rank");
  bool empty_view = false;
  for (int i = 0; i < shape.size(); ++i) {
    SP_CHECK(shape[i] >= 0, "[as_strided] negative dim in shape ", shape);
    if (shape[i] == 0) empty_view = true;
  }
  if (!empty_view) {
    // The element count must fit in int64 (numel() would wrap), and the furthest element
    // reached must stay inside the storage; an overflowing reach cannot.
    int64_t count = 1, lo = offset, hi = offset;
    bool too_many = false, outside = false;
    for (int i = 0; i < shape.size(); ++i) {
      too_many = too_many || __builtin_mul_overflow(count, shape[i], &count);
      int64_t reach = 0;
      outside = outside || __builtin_mul_overflow(shape[i] - 1, strides[i], &reach) ||
                __builtin_add_overflow(reach >= 0 ? hi : lo, reach, reach >= 0 ? &hi : &lo);
    }
    SP_CHECK(!too_many, "[as_strided] view ", shape,
             " has too many elements: the count overflows 64 bits");
    const int64_t capacity = static_cast<int64_t>(storage_->nbytes()) / element_size();
    SP_CHECK(!outside && lo >= 0 && hi < capacity, "[as_strided] view ", shape, " with strides ",
             strides, " at offset ", offset, " reaches outside a storage of ", capacity,
             " elements");
  }
  return Tensor(storage_, shape, strides, offset, dtype_);
}

namespace {

// T is int64_t for integer and bool tensors: through a double, i64 values past 2^53 would
// print rounded (and INT64_MAX as INT64_MIN).
template <typename T>
void print_values(std::ostream& os, const std::vector<T>& v, const Shape& shape,
                  const Shape& strides, int dim, int64_t base, bool summarize) {
  constexpr int64_t kEdge = 3;
  if (dim == shape.size()) {
    os << std::setprecision(6) << v[base];
    return;
  }
  os << "[";
  const int64_t n = shape[dim];
  for (int64_t i = 0; i < n; ++i) {
    if (summarize && n > 2 * kEdge && i == kEdge) {
      os << "..., ";
      i = n - kEdge;
    }
    print_values(os, v, shape, strides, dim + 1, base + i * strides[dim], summarize);
    if (i + 1 < n) os << (dim + 1 == shape.size() ? ", " : ",\n ");
  }
  os << "]";
}

}  // namespace

std::string Tensor::str() const {
  if (!defined()) return "tensor(undefined)";
  std::ostringstream os;
  os << "tensor(";
  if (is_floating(dtype_)) {
    print_values(os, to_vector<double>(), shape_, contiguous_strides(shape_), 0, 0, numel() > 1000);
  } else {
    print_values(os, to_vector<int64_t>(), shape_, contiguous_strides(shape_), 0, 0,
                 numel() > 1000);
  }
  os << ", shape=" << shape_ << ", dtype=" << dtype_name(dtype_);
  if (!device().is_cpu()) os << ", device=" << device();
  if (requires_grad()) os << ", requires_grad";
  os << ")";
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }

std::string describe(const Tensor& t) {
  if (!t.defined()) return "undefined";
  return t.shape().str() + " " + dtype_name(t.dtype());
}

}  // namespace sp
