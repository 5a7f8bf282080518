#include "tensor/cpu/cpu_backend.h"

namespace sp {

namespace cpu {

bool CpuBackend::supports(Prim prim, DType dtype) const {
  const bool floating = is_floating(dtype);
  const bool integer = dtype == DType::i32 || dtype == DType::i64;
  switch (prim) {
    case Prim::fill:
    case Prim::copy:
    case Prim::where:
    case Prim::index_select:
    case Prim::gather:
      return true;
    case Prim::binary:
      return true;  // arithmetic on numbers, comparisons on every dtype
    case Prim::reduce:
      return floating || integer || dtype == DType::boolean;
    case Prim::index_add:
    case Prim::scatter_add:
      return floating || integer;
    case Prim::random:
      return floating || integer || dtype == DType::boolean;
    case Prim::matmul:
      return dtype == DType::f32 || dtype == DType::bf16 || dtype == DType::f16 || dtype == DType::f64;
    default:
      return floating;
  }
}

}  // namespace cpu

Backend& cpu_backend() {
  static cpu::CpuBackend backend;
  return backend;
}

}  // namespace sp
