/// @file ops/ops.h @brief Umbrella header of the core: tensors, autograd and the differentiable ops.
#pragma once
#include "core/grad_mode.h"
#include "ops/attention.h"
#include "ops/autograd/node.h"
#include "ops/elementwise.h"
#include "ops/linalg.h"
#include "ops/reduce.h"
#include "ops/softmax.h"
#include "core/tensor.h"
