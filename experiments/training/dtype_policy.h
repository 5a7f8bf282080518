#pragma once
// Dtype policy for tuning a frozen backbone: the frozen parameters (requires_grad false)
// live in a low-precision dtype (bf16 halves their memory and doubles oneDNN's matmul
// speed), the trainable ones stay f32, as do the optimizer state and the gradients.
//
//   auto peft = make_peft("prompt_tuning", settings);
//   peft->attach(model);                    // freezes model, adds f32 trainable parameters
//   cast_frozen_parameters(model);          // before building the optimizer
//
// Like Module::to(), this rebinds the module's tensor members (new storage), so call it
// before anything keeps handles to the frozen parameters.
#include <cstdint>

#include "nn/module.h"
#include "tensor/dtype.h"

namespace sp {

// Casts every floating parameter of module (recursively) that does not require grad to
// frozen_dtype and every one that does to trainable_dtype. Buffers are left as they are.
// Returns how many parameters changed dtype.
int64_t cast_frozen_parameters(Module& module, DType frozen_dtype = DType::bf16,
                               DType trainable_dtype = DType::f32);

}  // namespace sp
