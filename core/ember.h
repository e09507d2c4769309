/// @file core/ember.h @brief Umbrella header of the core: tensors, autograd and the differentiable ops.
#pragma once
#include "core/autograd/grad_mode.h"
#include "core/autograd/node.h"
#include "core/ops/elementwise.h"
#include "core/ops/linalg.h"
#include "core/ops/reduce.h"
#include "core/ops/softmax.h"
#include "core/tensor.h"
