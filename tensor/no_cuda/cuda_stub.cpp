// The CUDA entry points of a build without CUDA (SP_WITH_CUDA=OFF): every one reports
// how to get CUDA instead of failing somewhere deeper, unless SP_EMULATE_CUDA=1 asks for
// the host-emulated device (tensor/cuda_emulation.h).
#include "tensor/backend.h"
#include "tensor/cuda_emulation.h"
#include "tensor/cuda_hooks.h"
#include "tensor/error.h"

namespace sp {
namespace {

constexpr const char* kHint =
    "built without CUDA: rebuild with -DSP_WITH_CUDA=ON on a machine with nvcc";

class NoCudaBackend final : public Backend {
 public:
  std::string name() const override { return "cuda (not built)"; }
  bool supports(Prim, DType) const override { return false; }

 protected:
  [[noreturn]] void unsupported(const char* op) const override {
    fail(str_cat("[", op, "] ", kHint));
  }
};

}  // namespace

Backend& cuda_backend() {
  if (cuda_emulated()) return emulated_cuda_backend();
  static NoCudaBackend backend;
  return backend;
}

bool built_with_cuda() { return false; }
bool cuda_available() { return cuda_emulated(); }
int cuda_device_count() { return cuda_emulated() ? 1 : 0; }
std::string cuda_unavailable_reason() { return cuda_emulated() ? "" : kHint; }

Allocator& cuda_allocator(int device_index) {
  if (cuda_emulated()) return emulated_cuda_allocator(device_index);
  fail(str_cat("[allocate] cuda:", device_index, ": ", kHint));
}

}  // namespace sp
