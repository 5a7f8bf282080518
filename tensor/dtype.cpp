#include "tensor/dtype.h"

#include "tensor/error.h"

namespace sp {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "f32";
    case DType::bf16: return "bf16";
    case DType::f16: return "f16";
    case DType::f64: return "f64";
    case DType::i32: return "i32";
    case DType::i64: return "i64";
    case DType::boolean: return "bool";
  }
  return "?";
}

DType dtype_from_name(const std::string& name) {
  for (DType t : kAllDTypes)
    if (name == dtype_name(t)) return t;
  fail(str_cat("[dtype] unknown dtype '", name, "': expected f32, bf16, f16, f64, i32, i64 or bool"));
}

}  // namespace sp
