#pragma once
// Tensor: a cheap handle {storage, shape, strides, offset, dtype, autograd slot}.
//
// Views (reshape, permute, slice, expand, ...) share storage. Every op a user calls is
// differentiable: the convenience methods below forward to the ops in autograd/ops/ and
// are defined there; tensor/ itself only knows metadata and raw views (kernels.h).
#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "tensor/device.h"
#include "tensor/dtype.h"
#include "tensor/error.h"
#include "tensor/shape.h"
#include "tensor/storage.h"

namespace sp {

struct AutogradMeta;  // autograd/node.h

class Tensor {
 public:
  Tensor() = default;  // undefined: defined() is false

  // --- creation ---------------------------------------------------------------
  static Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor full(const Shape& shape, double value, DType dtype = DType::f32,
                     Device device = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor ones(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor scalar(double value, DType dtype = DType::f32, Device device = Device::cpu());
  // 0, 1, ..., n - 1
  static Tensor arange(int64_t n, DType dtype = DType::i64, Device device = Device::cpu());
  // Copies values (converted to dtype when given, else dtype_of<T>) into a new CPU tensor.
  template <typename T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape);
  template <typename T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape, DType dtype);
  template <typename T>
  static Tensor from_vector(const std::vector<T>& values) {
    return from_vector(values, Shape{static_cast<int64_t>(values.size())});
  }
  // Wraps existing storage.
  Tensor(std::shared_ptr<Storage> storage, const Shape& shape, const Shape& strides,
         int64_t offset, DType dtype);

  // --- metadata ---------------------------------------------------------------
  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int64_t size(int64_t dim) const;  // negative dims count from the end
  const Shape& strides() const { return strides_; }
  int64_t stride(int64_t dim) const;
  int dim() const { return shape_.size(); }
  int64_t numel() const { return shape_.numel(); }
  DType dtype() const { return dtype_; }
  Device device() const;
  int64_t offset() const { return offset_; }  // in elements
  int64_t element_size() const { return dtype_size(dtype_); }
  int64_t nbytes() const { return numel() * element_size(); }
  bool is_contiguous() const;
  const std::shared_ptr<Storage>& storage() const { return storage_; }
  // True when both view the same bytes with the same layout.
  bool is_same(const Tensor& other) const;

  // --- data access (CPU tensors) ----------------------------------------------
  void* data_ptr() const;
  template <typename T>
  T* data() const;  // checks dtype_of<T> == dtype() and device is CPU
  // The single value of a one-element tensor, converted to T (any device).
  template <typename T = double>
  T item() const;
  // All values in row-major order, converted to T (any device, any layout).
  template <typename T>
  std::vector<T> to_vector() const;
  std::string str() const;  // readable printing with shape, dtype, values (abbreviated)

  // A raw view over the same storage: no checks beyond bounds, no autograd.
  Tensor as_strided(const Shape& shape, const Shape& strides, int64_t offset) const;

  // --- autograd (defined in autograd/) -----------------------------------------
  bool requires_grad() const;
  // Marks a leaf as trainable (or frozen); throws on a non-leaf.
  Tensor& requires_grad_(bool enabled = true);
  bool is_leaf() const;
  Tensor grad() const;  // undefined until a backward pass reached this leaf
  void set_grad(const Tensor& g);
  void zero_grad();  // drops the gradient (undefined again)
  // Backward from a one-element tensor (gradient 1) or with a given gradient.
  void backward() const;
  void backward(const Tensor& gradient) const;
  Tensor detach() const;  // same storage, outside the graph
  const std::shared_ptr<AutogradMeta>& autograd_meta() const { return autograd_; }
  void set_autograd_meta(std::shared_ptr<AutogradMeta> meta) { autograd_ = std::move(meta); }

  // --- differentiable views and conversions (defined in autograd/ops/) ---------
  Tensor reshape(const Shape& shape) const;  // a view when the layout allows, else a copy
  Tensor view(const Shape& shape) const;     // always a view; throws when impossible
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;
  Tensor permute(const Shape& dims) const;
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor mT() const;  // swaps the last two dims
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor select(int64_t dim, int64_t index) const;  // drops dim
  Tensor expand(const Shape& shape) const;  // -1 keeps a dim
  Tensor squeeze(int64_t dim) const;
  Tensor squeeze() const;  // all size-1 dims
  Tensor unsqueeze(int64_t dim) const;
  Tensor contiguous() const;
  Tensor to(DType dtype) const;
  Tensor to(Device device) const;
  Tensor clone() const;

 private:
  std::shared_ptr<Storage> storage_;
  Shape shape_;
  Shape strides_;
  int64_t offset_ = 0;
  DType dtype_ = DType::f32;
  std::shared_ptr<AutogradMeta> autograd_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

// "[2, 3] f32" for error messages.
std::string describe(const Tensor& t);

}  // namespace sp
