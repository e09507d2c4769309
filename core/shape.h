/// @file core/shape.h @brief Shape/stride vectors and helpers (numel, contiguous strides, broadcasting, printing).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ember {

using Shape = std::vector<int64_t>;

int64_t shape_numel(const Shape& s);
Shape contiguous_strides(const Shape& s);
/// "[2, 3]"
std::string shape_str(const Shape& s);
/// Broadcasts two shapes by NumPy rules; throws an Error naming both shapes (and `what`) if incompatible.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* what);
/// Wraps a possibly negative dim into [0, ndim); throws an Error naming the dim and ndim if out of range.
int64_t wrap_dim(int64_t dim, int64_t ndim, const char* what);

}  // namespace ember
