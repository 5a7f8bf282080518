#include "nn/peft/model_tuning.h"

#include "tensor/error.h"

namespace sp {

void ModelTuning::attach(PeftHost& host) {
  SP_CHECK(module_ == nullptr, "[peft:model_tuning] attach() runs once per method object");
  module_ = &host.module();
  module_->requires_grad_(true);
  attached(host);
}

NamedTensors ModelTuning::trainable() const {
  SP_CHECK(module_ != nullptr, "[peft:model_tuning] trainable() before attach()");
  return module_->named_parameters();
}

SP_REGISTER_PEFT(model_tuning, "full fine-tuning, every parameter trains (the paper's baseline)",
                 ModelTuning);

}  // namespace sp
