// GPU reductions and the embedding lookup / backward, in GBps of the minimum bytes moved
// (each input read once, each output written once), to be read against gpu_copy's
// device-to-device GBps (elementwise_bench.cpp) from the same run.
//
// gpu_reduce_sum Args {dtype, dim}: sum over dim 1 (rows) or dim 0 (columns) of an
// 8192 x 32128 tensor (T5 logits: 8 x 512 tokens by the vocabulary; 1 GB in f32, far past
// the 50 MB L2). gpu_embedding Args {dtype, backward}: the T5 table, V = 32128, D = 768,
// 8192 ids drawn uniformly. Both call the backend primitive on preallocated outputs, so a
// launch is the kernels alone (the dispatch layer also checks ids on the host, a sync).
#include <algorithm>
#include <cstdint>
#include <unordered_set>
#include <vector>

#include "bench/cuda/gpu_bench.h"
#include "tensor/backend.h"
#include "tensor/kernels.h"

namespace sp {
namespace {

// n ids uniform in [0, v).
std::vector<int32_t> random_ids(int64_t n, int64_t v, uint64_t seed) {
  std::vector<int32_t> ids(static_cast<size_t>(n));
  uint64_t s = seed * 6364136223846793005ull + 1442695040888963407ull;
  for (int32_t& id : ids) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    id = static_cast<int32_t>((s >> 33) % static_cast<uint64_t>(v));
  }
  return ids;
}

void gpu_reduce_sum(benchmark::State& state) {
  if (!gpu_bench::require_gpu(state)) return;
  const DType dt = gpu_bench::bench_dtype(state.range(0));
  const int dim = static_cast<int>(state.range(1));
  const Shape shape{8192, 32128};
  const Tensor x = gpu_bench::random_device(shape, dt, 1);
  Shape kept = shape;
  kept[dim] = 1;
  Tensor out = Tensor::empty(kept, dt, Device::cuda(0));
  Backend& gpu = cuda_backend();
  gpu_bench::time_launches(state, [&] { gpu.reduce(ReduceOp::sum, out, x, 1u << dim); });
  gpu_bench::set_bytes(state, static_cast<double>(x.nbytes() + out.nbytes()));
}
SP_GPU_BENCHMARK(gpu_reduce_sum)
    ->ArgNames({"bf16", "dim"})
    ->Args({0, 1})
    ->Args({1, 1})
    ->Args({0, 0})
    ->Args({1, 0});

void gpu_embedding(benchmark::State& state) {
  if (!gpu_bench::require_gpu(state)) return;
  const DType dt = gpu_bench::bench_dtype(state.range(0));
  const bool backward = state.range(1) != 0;
  const int64_t v = 32128, d = 768, n = 8192;
  const std::vector<int32_t> host_ids = random_ids(n, v, 2);
  const Tensor ids = kernels::to_device(Tensor::from_vector(host_ids, Shape{n}), Device::cuda(0));
  const double id_bytes = static_cast<double>(ids.nbytes());
  const double esize = static_cast<double>(dtype_size(dt));
  Backend& gpu = cuda_backend();
  if (!backward) {
    const Tensor weight = gpu_bench::random_device(Shape{v, d}, dt, 3);
    Tensor out = Tensor::empty(Shape{n, d}, dt, Device::cuda(0));
    gpu_bench::time_launches(state, [&] { gpu.embedding(out, weight, ids); });
    // The selected rows read, the output written.
    gpu_bench::set_bytes(state, id_bytes + 2.0 * static_cast<double>(n * d) * esize);
    return;
  }
  // dweight in f32, as kernels::embedding_backward accumulates; dy in dt.
  const Tensor dy = gpu_bench::random_device(Shape{n, d}, dt, 4);
  Tensor dweight = gpu_bench::random_device(Shape{v, d}, DType::f32, 5);
  gpu_bench::time_launches(state, [&] { gpu.embedding_backward(dweight, dy, ids); });
  const std::unordered_set<int32_t> distinct(host_ids.begin(), host_ids.end());
  // dy and ids read, each touched dweight row read and written.
  gpu_bench::set_bytes(state, static_cast<double>(dy.nbytes()) + id_bytes +
                                  2.0 * static_cast<double>(distinct.size()) * d * 4.0);
}
SP_GPU_BENCHMARK(gpu_embedding)
    ->ArgNames({"bf16", "backward"})
    ->Args({0, 0})
    ->Args({1, 0})
    ->Args({0, 1})
    ->Args({1, 1});

}  // namespace
}  // namespace sp
