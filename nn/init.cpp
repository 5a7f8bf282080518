#include "nn/init.h"

#include "autograd/grad_mode.h"
#include "tensor/kernels.h"

namespace sp::init {

namespace {
void draw(Tensor& t, DistributionParams d, Generator* gen, const char* op) {
  SP_CHECK(t.defined(), "[", op, "] undefined tensor");
  SP_CHECK(is_floating(t.dtype()), "[", op, "] needs a floating tensor, got ", describe(t));
  Generator& g = gen ? *gen : default_generator();
  NoGradGuard no_grad;
  Tensor target = t.detach();
  kernels::random_(target, d, g.next());
}
}  // namespace

void normal_(Tensor& t, double mean, double std, Generator* gen) {
  draw(t, DistributionParams{Distribution::normal, mean, std}, gen, "init::normal_");
}

void uniform_(Tensor& t, double low, double high, Generator* gen) {
  draw(t, DistributionParams{Distribution::uniform, low, high}, gen, "init::uniform_");
}

void constant_(Tensor& t, double value) {
  SP_CHECK(t.defined(), "[init::constant_] undefined tensor");
  NoGradGuard no_grad;
  Tensor target = t.detach();
  kernels::fill_(target, value);
}

}  // namespace sp::init
