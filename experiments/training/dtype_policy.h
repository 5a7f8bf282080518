#pragma once
// Dtype policy for tuning a frozen backbone: the frozen parameters (requires_grad false)
// live in a low-precision dtype (bf16 halves their memory and doubles oneDNN's matmul
// speed), the trainable ones stay f32, as do the optimizer state and the gradients.
//
//   auto peft = make_peft("prompt_tuning", settings);
//   peft->attach(model);                    // freezes model, adds f32 trainable parameters
//   use_bf16_backbone(model);               // before building the optimizer
//
// The model then computes in bf16 whatever stays f32 (nn/mixed_dtype.h): backbone tensors
// a method trains are cast where used, and model tuning, which trains every weight, runs in
// mixed precision (f32 weights, gradients and optimizer state; bf16 matmuls).
//
// Like Module::to(), this rebinds the module's tensor members (new storage), so call it
// before anything keeps handles to the frozen parameters.
#include <cstdint>

#include "nn/module.h"
#include "nn/peft/peft_host.h"
#include "tensor/dtype.h"

namespace sp {

// Casts every floating parameter of module (recursively) that does not require grad to
// frozen_dtype and every one that does to trainable_dtype. Buffers are left as they are.
// Returns how many parameters changed dtype.
int64_t cast_frozen_parameters(Module& module, DType frozen_dtype = DType::bf16,
                               DType trainable_dtype = DType::f32);

// What a run with a bf16 backbone does to its model: cast_frozen_parameters(host.module(),
// bf16, trainable_dtype), then host.set_compute_dtype(bf16). Returns the cast count.
int64_t use_bf16_backbone(PeftHost& host, DType trainable_dtype = DType::f32);

// For evaluation only: the whole backbone (tuned tensors too: nothing trains) cast to bf16
// storage and computed in bf16, so that no weight is cast again on every forward. PEFT
// methods' own parameters, which live outside the module tree, keep their dtype.
int64_t use_bf16_for_inference(PeftHost& host);

}  // namespace sp
