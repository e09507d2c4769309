/// @file kernels/optimizer.cpp @brief Device-generic entry points of the fused optimizer updates: validation, then dispatch.
#include "kernels/optimizer.h"

#include <cmath>

#include "kernels/dispatch.h"

namespace ember::kernels {
namespace {

const OptimizerKernels& table(Device d) { return table_for<OptimizerKernels>(d.type); }

/// `what[i]` must match params[i] in device, dtype and numel, and be contiguous.
void check_companion(const char* op, const char* what, const Tensor& p, const Tensor& t, size_t i) {
  EMBER_CHECK(t.defined(), op, ": ", what, "[", i, "] is undefined (parameter ", describe(p), ")");
  EMBER_CHECK(t.device() == p.device() && t.dtype() == p.dtype() && t.numel() == p.numel() && t.is_contiguous(), op,
              ": ", what, "[", i, "] ", describe(t), " does not match parameter ", describe(p),
              " (same device, dtype and numel, contiguous)");
}

void check_lists(const char* op, std::span<Tensor> params, std::span<const Tensor> grads,
                 std::initializer_list<std::pair<const char*, std::span<Tensor>>> states) {
  EMBER_CHECK(params.size() == grads.size(), op, ": ", params.size(), " parameters but ", grads.size(), " gradients");
  for (const auto& [name, s] : states)
    EMBER_CHECK(s.size() == params.size(), op, ": ", params.size(), " parameters but ", s.size(), " ", name);
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor& p = params[i];
    EMBER_CHECK(p.defined() && p.is_contiguous() && is_floating(p.dtype()), op, ": parameter ", i,
                " must be a contiguous floating tensor, got ", describe(p));
    check_same_device(op, params[0], p);
    check_same_dtype(op, params[0], p);
    check_companion(op, "grads", p, grads[i], i);
    for (const auto& [name, s] : states) check_companion(op, name, p, s[i], i);
  }
}

void check_gate(const char* op, const StepGate& gate, const Tensor& p) {
  if (!gate.status.defined()) return;
  EMBER_CHECK(gate.status.dtype() == DType::f64 && gate.status.numel() == kStatusSize && gate.status.is_contiguous() &&
                  gate.status.device() == p.device(),
              op, ": the gate's status must be make_step_status(", p.device().str(), "), got ", describe(gate.status));
  EMBER_CHECK(std::isfinite(gate.clip_norm) && gate.clip_norm >= 0.0, op, ": clip_norm must be >= 0, got ",
              gate.clip_norm);
}

}  // namespace

void sgd_step(std::span<Tensor> params, std::span<const Tensor> grads, std::span<Tensor> momentum_bufs,
              const SgdStepOptions& o, double grad_scale, const StepGate& gate) {
  if (o.momentum != 0.0) {
    check_lists("sgd_step", params, grads, {{"momentum buffers", momentum_bufs}});
  } else {
    EMBER_CHECK(momentum_bufs.empty(), "sgd_step: momentum is 0 but ", momentum_bufs.size(),
                " momentum buffers were given");
    check_lists("sgd_step", params, grads, {});
  }
  if (params.empty()) return;
  check_gate("sgd_step", gate, params[0]);
  require(table(params[0].device()).sgd_step, "sgd_step", params[0].device())(params, grads, momentum_bufs, o,
                                                                               grad_scale, gate);
}

void adamw_step(std::span<Tensor> params, std::span<const Tensor> grads, std::span<Tensor> exp_avgs,
                std::span<Tensor> exp_avg_sqs, const AdamWStepOptions& o, int64_t step, double grad_scale,
                const StepGate& gate) {
  EMBER_CHECK(step >= 1, "adamw_step: step must be >= 1 (1-based count of updates), got ", step);
  check_lists("adamw_step", params, grads, {{"exp_avgs", exp_avgs}, {"exp_avg_sqs", exp_avg_sqs}});
  if (params.empty()) return;
  check_gate("adamw_step", gate, params[0]);
  require(table(params[0].device()).adamw_step, "adamw_step", params[0].device())(params, grads, exp_avgs, exp_avg_sqs,
                                                                                   o, step, grad_scale, gate);
}

}  // namespace ember::kernels
