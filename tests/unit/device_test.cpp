// Devices and the CUDA entry points. On a machine without CUDA (or without a GPU) moving a
// tensor to a CUDA device must fail with a clear sp::Error; with a GPU it must round-trip.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "autograd/ops.h"
#include "tensor/allocator.h"
#include "tensor/backend.h"
#include "tensor/cuda_emulation.h"
#include "tensor/cuda_hooks.h"
#include "test_util.h"

namespace sp {
namespace {

// The sp::Error text statement throws ("" and a test failure when it does not throw).
template <typename F>
std::string error_text(F&& statement) {
  try {
    statement();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an sp::Error";
  return "";
}

TEST(Device, NamesAndEquality) {
  EXPECT_EQ(Device::cpu().str(), "cpu");
  EXPECT_EQ(Device::cuda().str(), "cuda:0");
  EXPECT_EQ(Device::cuda(3).str(), "cuda:3");
  EXPECT_EQ(Device::cuda(1), Device::cuda(1));
  EXPECT_NE(Device::cuda(0), Device::cuda(1));
  EXPECT_NE(Device::cpu(), Device::cuda(0));
  EXPECT_TRUE(Device().is_cpu());
  EXPECT_EQ(Tensor::zeros({2, 3}).device(), Device::cpu());
}

TEST(Device, BuildFlagAndAvailabilityAgree) {
  if (cuda_emulated()) {  // SP_EMULATE_CUDA=1, whatever the build
    EXPECT_TRUE(cuda_available());
    EXPECT_EQ(cuda_device_count(), 1);
    EXPECT_EQ(cuda_backend().name(), "cuda (host-emulated)");
    return;
  }
#if defined(SP_WITH_CUDA)
  EXPECT_TRUE(built_with_cuda());
  EXPECT_EQ(cuda_backend().name(), "cuda");
#else
  EXPECT_FALSE(built_with_cuda());
  EXPECT_FALSE(cuda_available());
  EXPECT_EQ(cuda_device_count(), 0);
  EXPECT_NE(cuda_unavailable_reason().find("built without CUDA: rebuild with -DSP_WITH_CUDA=ON"),
            std::string::npos);
#endif
  EXPECT_EQ(cuda_available(), cuda_device_count() > 0);
  EXPECT_EQ(cuda_unavailable_reason().empty(), cuda_available());
  EXPECT_EQ(&backend_for(DeviceType::cuda), &cuda_backend());
  EXPECT_EQ(&backend_for(DeviceType::cpu), &cpu_backend());
}

TEST(Device, ToCudaWithoutDeviceThrowsNamingTheOp) {
  if (cuda_available()) GTEST_SKIP() << "a CUDA device is present: see ToCudaAndBack";
  const Tensor x = Tensor::from_vector<float>({1, 2, 3, 4}, {2, 2});
  const std::string reason = cuda_unavailable_reason();
  const std::vector<std::string> messages = {
      error_text([&] { x.to(Device::cuda(0)); }),
      error_text([&] {
        Tensor::zeros({2, 3}, DType::f32, Device::cuda());
      }),
      error_text([&] { allocator_for(Device::cuda(0)); }),
  };
  for (const std::string& msg : messages) {
    ASSERT_FALSE(msg.empty());
    EXPECT_EQ(msg[0], '[') << msg;  // the op in brackets
    EXPECT_NE(msg.find("] "), std::string::npos) << msg;
    EXPECT_NE(msg.find(reason), std::string::npos) << msg;
    EXPECT_NE(msg.find(built_with_cuda() ? "no CUDA device" : "built without CUDA"),
              std::string::npos)
        << msg;
  }
  // The CPU tensor is untouched.
  testing::expect_values(x, {1, 2, 3, 4});
}

// A build with CUDA supports every primitive and dtype the CPU does; one without names
// the missing build option instead of failing deeper.
TEST(Device, CudaBackendSupportsWhatTheCpuDoes) {
  for (int p = 0; p <= static_cast<int>(Prim::scatter_add); ++p) {
    for (DType dt : kAllDTypes) {
      const Prim prim = static_cast<Prim>(p);
      EXPECT_EQ(cuda_backend().supports(prim, dt),
                built_with_cuda() && cpu_backend().supports(prim, dt))
          << prim_name(prim) << " " << dtype_name(dt);
    }
  }
  if (!built_with_cuda()) {
    Tensor a = Tensor::zeros({2, 2});
    Tensor out = Tensor::zeros({2, 2});
    EXPECT_THROW_MSG(cuda_backend().matmul(out, a, a, {}), "[matmul] built without CUDA");
    EXPECT_THROW_MSG(cuda_backend().softmax(out, a, false), "[softmax] built without CUDA");
    EXPECT_THROW_MSG(cuda_backend().fill(out, 1.0),
                     "[fill] built without CUDA: rebuild with -DSP_WITH_CUDA=ON on a machine "
                     "with nvcc");
    EXPECT_THROW_MSG(cuda_backend().copy(out, a), "[copy] built without CUDA");
  }
}

TEST(Device, ToCudaAndBack) {
  if (!cuda_available()) GTEST_SKIP() << cuda_unavailable_reason();
  const Device gpu = Device::cuda(0);
  const AllocatorStats before = allocator_for(gpu).stats();
  {
    const Tensor x = Tensor::from_vector<float>({1.5f, -2, 3, 4.25f, 0, -7}, {2, 3});
    const Tensor on_gpu = x.to(gpu);
    EXPECT_EQ(on_gpu.device(), gpu);
    EXPECT_EQ(on_gpu.shape(), x.shape());
    EXPECT_EQ(allocator_for(gpu).stats().current_bytes - before.current_bytes, 6 * 4);
    testing::expect_values(on_gpu.to(Device::cpu()), {1.5, -2, 3, 4.25, 0, -7});
    // A device-to-device copy, then back.
    testing::expect_values(on_gpu.clone().to(Device::cpu()), {1.5, -2, 3, 4.25, 0, -7});
    // A strided host source is gathered on the way up.
    testing::expect_values(x.transpose(0, 1).to(gpu).to(Device::cpu()), {1.5, 4.25, -2, 0, 3, -7});
  }
  EXPECT_EQ(allocator_for(gpu).stats().current_bytes, before.current_bytes);

  for (DType dtype :
       {DType::f32, DType::bf16, DType::f16, DType::f64, DType::i32, DType::i64, DType::boolean}) {
    const Tensor filled = Tensor::full({3, 67}, 1.0, dtype, gpu);
    const std::vector<double> got = filled.to(Device::cpu()).to_vector<double>();
    ASSERT_EQ(got.size(), 3u * 67u);
    for (double v : got) ASSERT_EQ(v, 1.0) << dtype_name(dtype);
    const Tensor ids = Tensor::from_vector<int64_t>({0, 1, 0, 1}).to(dtype);
    EXPECT_EQ(ids.to(gpu).to(Device::cpu()).to_vector<double>(), (std::vector<double>{0, 1, 0, 1}))
        << dtype_name(dtype);
  }

  const int missing = cuda_device_count();
  EXPECT_THROW_MSG(Tensor::zeros({2}, DType::f32, Device::cuda(missing)), "does not exist");
}

}  // namespace
}  // namespace sp
