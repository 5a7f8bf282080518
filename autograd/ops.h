#pragma once
// Every public op. Include this to write models: all of it is differentiable unless noted.
#include "autograd/grad_mode.h"
#include "autograd/ops/elementwise.h"
#include "autograd/ops/indexing.h"
#include "autograd/ops/linalg.h"
#include "autograd/ops/nn.h"
#include "autograd/ops/random.h"
#include "autograd/ops/reduce.h"
#include "tensor/tensor.h"
