// model.device fails early, naming the key and the reason,
// when CUDA is not usable; cpu always passes. (Runs on every machine: on one with a GPU the
// failing cases are the out-of-range index.)
#include <gtest/gtest.h>

#include "experiments/runner/model_loading.h"
#include "tensor/backend.h"
#include "tensor/cuda_hooks.h"
#include "test_util.h"

namespace sp {
namespace {

TEST(ModelDevice, cpu_is_always_usable) {
  ModelSpec m;
  EXPECT_NO_THROW(check_model_device(m));
}

TEST(ModelDevice, unusable_cuda_names_the_key_and_reason) {
  ModelSpec m;
  m.device = Device::cuda(cuda_device_count() + 3);
  EXPECT_THROW_MSG(check_model_device(m), "[run] model.device: cuda:");
  EXPECT_THROW_MSG(check_model_device(m), "is not usable: ");
  if (!cuda_available()) {
    m.device = Device::cuda(0);
    EXPECT_THROW_MSG(check_model_device(m), cuda_unavailable_reason());
  }
}

}  // namespace
}  // namespace sp
