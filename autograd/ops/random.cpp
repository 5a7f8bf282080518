// Random tensors from Philox; each call takes the generator's next state.
#include "autograd/ops/random.h"

#include "tensor/kernels.h"

namespace sp {
namespace {

Tensor draw(const Shape& shape, DType dtype, DistributionParams d, Generator* gen) {
  Generator& g = gen ? *gen : default_generator();
  Tensor out = Tensor::empty(shape, dtype);
  kernels::random_(out, d, g.next());
  return out;
}

}  // namespace

// -> shape, values in [low, high)
Tensor uniform(const Shape& shape, double low, double high, DType dtype, Generator* gen) {
  return draw(shape, dtype, {Distribution::uniform, low, high}, gen);
}

// -> shape
Tensor normal(const Shape& shape, double mean, double std, DType dtype, Generator* gen) {
  return draw(shape, dtype, {Distribution::normal, mean, std}, gen);
}

// -> shape, integers in [low, high)
Tensor randint(const Shape& shape, int64_t low, int64_t high, DType dtype, Generator* gen) {
  return draw(shape, dtype,
              {Distribution::randint, static_cast<double>(low), static_cast<double>(high)}, gen);
}

// -> shape bool
Tensor bernoulli(const Shape& shape, double p, Generator* gen) {
  return draw(shape, DType::boolean, {Distribution::bernoulli, p, 0}, gen);
}

}  // namespace sp
