#include "tensor/backend.h"

namespace sp {

const char* prim_name(Prim p) {
  switch (p) {
    case Prim::fill: return "fill";
    case Prim::copy: return "copy";
    case Prim::unary: return "unary";
    case Prim::activation_backward: return "activation_backward";
    case Prim::binary: return "binary";
    case Prim::where: return "where";
    case Prim::reduce: return "reduce";
    case Prim::matmul: return "matmul";
    case Prim::softmax: return "softmax";
    case Prim::softmax_backward: return "softmax_backward";
    case Prim::rms_norm: return "rms_norm";
    case Prim::rms_norm_backward: return "rms_norm_backward";
    case Prim::embedding: return "embedding";
    case Prim::embedding_backward: return "embedding_backward";
    case Prim::cross_entropy: return "cross_entropy";
    case Prim::cross_entropy_backward: return "cross_entropy_backward";
    case Prim::dropout: return "dropout";
    case Prim::random: return "random";
    case Prim::index_select: return "index_select";
    case Prim::index_add: return "index_add";
    case Prim::gather: return "gather";
    case Prim::scatter_add: return "scatter_add";
  }
  return "?";
}

const char* reduce_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::sum: return "sum";
    case ReduceOp::mean: return "mean";
    case ReduceOp::max: return "max";
    case ReduceOp::min: return "min";
    case ReduceOp::argmax: return "argmax";
    case ReduceOp::argmin: return "argmin";
  }
  return "reduce";
}

void Backend::add_softmax(Tensor& out, const Tensor& in, const Tensor& bias) {
  Tensor sum = Tensor::empty(in.shape(), in.dtype(), in.device());
  binary(BinaryOp::add, sum, in, bias);
  softmax(out, sum, false);
}

void Backend::unsupported(const char* op) const {
  fail(str_cat("[", op, "] not supported by the ", name(), " backend"));
}

}  // namespace sp
