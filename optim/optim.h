/// @file optim/optim.h @brief Umbrella header of optim: optimizers, LR schedules, the gradient accumulator.
#pragma once
#include "optim/adamw.h"
#include "optim/grad_accumulator.h"
#include "optim/lr_scheduler.h"
#include "optim/optimizer.h"
#include "optim/sgd.h"
