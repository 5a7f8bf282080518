#pragma once
// Optimizer: the shared part of Adafactor, AdamW and SGD.
//
//   Adafactor opt(model.trainable(), names, {.multiply_by_parameter_scale = false,
//                                           .weight_decay_rate = 1e-5});
//   opt.set_schedule(Schedule::constant(0.3));
//   loss.backward();
//   opt.step();          // or opt.step(lr)
//   opt.zero_grad();
//
// Parameters are leaf tensors that require grad (handles share storage with the model's),
// on any device, in f32, bf16, f16 or f64. CPU parameters are updated by fused loops; the
// others by the same math built from kernels:: primitives (nn/optim/generic.h), with
// their state on the parameter's device. A parameter without a gradient at a step is left
// untouched and gets no state; the step count still advances (as in T5X and optax, whose
// counts are global). Updates are computed in f32 (f64 for f64 parameters) and written back
// rounded to the parameter's dtype; state is f32 (f64 for f64 parameters).
//
// State is a flat name -> tensor list: "<param name>.<slot>" for every parameter that has
// state (slots: Adafactor v_row, v_col, v, m; AdamW m, v; SGD momentum) and "step", an i64
// scalar. load_state_dict replaces all state and validates every entry first, so a
// trajectory continued from a restored state equals the uninterrupted one bit for bit.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "nn/optim/schedule.h"
#include "tensor/tensor.h"

namespace sp::optim {

// One tensor of per-parameter state: its slot name and shape (the dtype is state_dtype()).
struct StateSlot {
  std::string name;
  Shape shape;
};

using StateDict = std::vector<std::pair<std::string, Tensor>>;

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // Updates every parameter that has a gradient with learning rate lr (>= 0, finite).
  void step(double lr);
  // The same with lr = schedule().lr(step_count()); throws when no schedule was set.
  void step();
  // Drops every parameter's gradient.
  void zero_grad();

  void set_schedule(const Schedule& schedule) { schedule_ = schedule; }
  const std::optional<Schedule>& schedule() const { return schedule_; }

  // Updates made so far (the T5X/optax count: `t` of the next update).
  int64_t step_count() const { return step_; }
  const std::vector<Tensor>& params() const { return params_; }
  const std::vector<std::string>& names() const { return names_; }
  // The optimizer's name in messages: "adafactor", "adamw", "sgd".
  const char* name() const { return op_; }

  // The state tensors themselves (not copies: clone them for a snapshot), on the
  // parameters' devices, plus "step" (a CPU scalar).
  StateDict state_dict() const;
  // Replaces all state (entries may be on any device: they are copied to the
  // parameter's). Throws "[<op>] state ..." naming the first unknown, missing
  // (a parameter with some of its slots but not all, or no "step"), mis-shaped or
  // non-floating entry; nothing changes then.
  void load_state_dict(const StateDict& state);

  bool has_state(size_t index) const { return !state_[index].empty(); }
  // A parameter's state tensor by slot name; undefined when it has none.
  Tensor state(size_t index, const std::string& slot) const;
  // The dtype state is kept in for a parameter of dtype d: f64 for f64, else f32.
  static DType state_dtype(DType d) { return d == DType::f64 ? DType::f64 : DType::f32; }

 protected:
  // names: one per parameter, unique (e.g. module names); empty gives "0", "1", ...
  Optimizer(const char* op, std::vector<Tensor> params, std::vector<std::string> names);

  // The state a parameter of this shape needs, in a fixed order.
  virtual std::vector<StateSlot> state_slots(const Shape& shape) const = 0;
  // Checks a step is allowed (e.g. Adafactor's step_offset); called before any update.
  virtual void check_step(int64_t step) const {}
  // One parameter's update. param and grad are contiguous, of the same dtype; state holds
  // the tensors of state_slots(param.shape()) in order, contiguous, zero before the first
  // update. step is step_count() before this update.
  virtual void update(const Tensor& param, const Tensor& grad, std::vector<Tensor>& state,
                      double lr, int64_t step) = 0;
  // The same update from kernels:: primitives only (any device; see generic.h). param,
  // grad and state are on one device; param is written in place.
  virtual void update_generic(const Tensor& param, const Tensor& grad, std::vector<Tensor>& state,
                              double lr, int64_t step) = 0;

  const char* op_;

 private:
  std::vector<Tensor> params_;
  std::vector<std::string> names_;
  std::vector<std::vector<Tensor>> state_;  // per parameter, empty until its first update
  int64_t step_ = 0;
  std::optional<Schedule> schedule_;
};

}  // namespace sp::optim
