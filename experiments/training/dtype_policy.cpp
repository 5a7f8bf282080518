#include "experiments/training/dtype_policy.h"

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "autograd/grad_mode.h"
#include "tensor/kernels.h"

namespace sp {

int64_t cast_frozen_parameters(Module& module, DType frozen_dtype, DType trainable_dtype) {
  SP_CHECK(is_floating(frozen_dtype) && is_floating(trainable_dtype),
           "[cast_frozen_parameters] dtypes must be floating, got ", dtype_name(frozen_dtype),
           " and ", dtype_name(trainable_dtype));
  NoGradGuard no_grad;
  std::set<std::string> param_names;
  for (const auto& [name, t] : module.named_parameters()) param_names.insert(name);
  // Tied parameters (one storage under several names) must stay tied: cast each storage
  // once and hand every name the same new tensor.
  std::map<std::pair<const void*, int64_t>, Tensor> converted;
  int64_t changed = 0;
  for (auto& [name, slot] : module.tensor_slots()) {
    Tensor& t = *slot;
    if (!param_names.count(name) || !t.defined() || !is_floating(t.dtype())) continue;
    const bool trainable = t.requires_grad();
    const DType want = trainable ? trainable_dtype : frozen_dtype;
    if (t.dtype() == want) continue;
    const auto key = std::make_pair(static_cast<const void*>(t.storage().get()), t.offset());
    auto it = converted.find(key);
    if (it == converted.end()) {
      Tensor n = kernels::cast(t.detach(), want);
      if (trainable) n.requires_grad_(true);
      it = converted.emplace(key, n).first;
    }
    t = it->second;
    ++changed;
  }
  return changed;
}

int64_t use_bf16_backbone(PeftHost& host, DType trainable_dtype) {
  const int64_t changed = cast_frozen_parameters(host.module(), DType::bf16, trainable_dtype);
  host.set_compute_dtype(DType::bf16);
  return changed;
}

int64_t use_bf16_for_inference(PeftHost& host) {
  host.module().requires_grad_(false);
  return use_bf16_backbone(host);
}

}  // namespace sp
