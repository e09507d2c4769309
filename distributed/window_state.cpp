/// @file distributed/window_state.cpp @brief Window-end state synchronization: the cross-rank merge of BatchNorm window statistics, packed buffer broadcasts, the max of a count over ranks.
#include "distributed/window_state.h"

#include <algorithm>
#include <functional>

#include "core/grad_mode.h"

namespace ember::distributed::detail {

std::vector<nn::BatchNormBase*> window_merged_layers(nn::Module& model) {
  std::vector<nn::BatchNormBase*> out;
  std::function<void(nn::Module&)> visit = [&](nn::Module& m) {
    auto* bn = dynamic_cast<nn::BatchNormBase*>(&m);
    if (bn && bn->options().window_stats && std::find(out.begin(), out.end(), bn) == out.end()) out.push_back(bn);
    for (const auto& [name, child] : m.named_children()) visit(*child);
  };
  visit(model);
  return out;
}

NamedTensors buffers_outside(const NamedTensors& buffers, const std::vector<nn::BatchNormBase*>& layers) {
  NamedTensors out;
  for (const auto& [name, t] : buffers) {
    const bool owned = std::any_of(layers.begin(), layers.end(), [&t = t](const nn::BatchNormBase* bn) {
      return t.is_same(bn->running_mean) || t.is_same(bn->running_var) || t.is_same(bn->num_batches_tracked);
    });
    if (!owned) out.emplace_back(name, t);
  }
  return out;
}

namespace {

size_t channels(const nn::BatchNormBase* bn) { return static_cast<size_t>(bn->options().num_features); }

// This rank's row: per layer, count then C means then C M2 values (zeros for an empty window).
std::vector<double> window_row(const std::vector<nn::BatchNormBase*>& layers, size_t cols) {
  std::vector<double> row;
  row.reserve(cols);
  for (const nn::BatchNormBase* bn : layers) {
    const nn::WindowStats& w = bn->window();
    const size_t c = channels(bn);
    row.push_back(static_cast<double>(w.count));
    if (w.count == 0) {
      row.insert(row.end(), 2 * c, 0.0);
      continue;
    }
    row.insert(row.end(), w.mean.begin(), w.mean.end());
    row.insert(row.end(), w.m2.begin(), w.m2.end());
  }
  return row;
}

}  // namespace

void merge_windows_across_ranks(ProcessGroup& group, const std::vector<nn::BatchNormBase*>& layers) {
  if (layers.empty()) return;
  size_t cols = 0;
  for (const nn::BatchNormBase* bn : layers) cols += 1 + 2 * channels(bn);
  const size_t world = static_cast<size_t>(group.size()), rank = static_cast<size_t>(group.rank());
  // A sum all-reduce of a table with one row per rank is an all-gather: each value is added to zeros
  // only, so every rank receives every rank's statistics exactly.
  std::vector<double> table(world * cols, 0.0);
  const std::vector<double> row = window_row(layers, cols);
  std::copy(row.begin(), row.end(), table.begin() + static_cast<std::ptrdiff_t>(rank * cols));
  Tensor t = from_vector(table, Shape{static_cast<int64_t>(world), static_cast<int64_t>(cols)},
                         TensorOptions{}.set_dtype(DType::f64));
  group.all_reduce(t);
  const std::vector<double> all = t.to_vector<double>();
  size_t offset = 0;
  for (nn::BatchNormBase* bn : layers) {
    const size_t c = channels(bn);
    nn::WindowStats merged;
    for (size_t r = 0; r < world; ++r) {  // rank order on every rank: the same result everywhere
      const double* p = all.data() + r * cols + offset;
      nn::WindowStats part{static_cast<int64_t>(p[0]), {p + 1, p + 1 + c}, {p + 1 + c, p + 1 + 2 * c}};
      if (part.count > 0) nn::merge_window_stats(merged, part);
    }
    bn->set_window(std::move(merged));
    offset += 1 + 2 * c;
  }
}

int64_t broadcast_packed(ProcessGroup& group, const NamedTensors& tensors) {
  if (group.size() == 1) return 0;
  NoGradGuard no_grad;
  std::vector<bool> done(tensors.size(), false);
  int64_t calls = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (done[i]) continue;
    const Tensor& first = tensors[i].second;
    std::vector<size_t> members;
    int64_t numel = 0;
    for (size_t j = i; j < tensors.size(); ++j) {
      const Tensor& t = tensors[j].second;
      if (done[j] || t.dtype() != first.dtype() || t.device() != first.device()) continue;
      done[j] = true;
      members.push_back(j);
      numel += t.numel();
    }
    Tensor flat = empty(Shape{numel}, TensorOptions{first.dtype(), first.device()});
    int64_t off = 0;
    for (size_t j : members) {
      const Tensor& t = tensors[j].second;
      flat.slice(0, off, off + t.numel()).copy_(t.detach().reshape(Shape{t.numel()}));
      off += t.numel();
    }
    group.broadcast(flat, 0);
    off = 0;
    for (size_t j : members) {
      Tensor dst = tensors[j].second.detach();
      dst.copy_(flat.slice(0, off, off + dst.numel()).reshape(dst.shape()));
      off += dst.numel();
    }
    ++calls;
  }
  return calls;
}

int64_t max_over_ranks(ProcessGroup& group, int64_t value) {
  if (group.size() == 1) return value;
  std::vector<int64_t> rows(static_cast<size_t>(group.size()), 0);
  rows[static_cast<size_t>(group.rank())] = value;
  Tensor t = from_vector(rows, Shape{group.size()}, TensorOptions{}.set_dtype(DType::i64));
  group.all_reduce(t);
  const std::vector<int64_t> all = t.to_vector<int64_t>();
  return *std::max_element(all.begin(), all.end());
}

}  // namespace ember::distributed::detail
