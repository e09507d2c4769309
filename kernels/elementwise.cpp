/// @file kernels/elementwise.cpp @brief Device-generic elementwise entry points: validation, broadcasting, dispatch.
#include "kernels/elementwise.h"

#include <array>
#include <string_view>

#include "kernels/dispatch.h"

namespace ember::kernels {
namespace {

template <class... Ops>
constexpr std::array<const char*, sizeof...(Ops)> names_of(OpList<Ops...>) {
  return {Ops::name...};
}
template <size_t N>
constexpr bool distinct(const std::array<const char*, N>& names) {
  for (size_t i = 0; i < N; ++i)
    for (size_t j = i + 1; j < N; ++j)
      if (std::string_view(names[i]) == names[j]) return false;
  return true;
}

constexpr auto kUnaryNames = names_of(UnaryOpList{});
constexpr auto kBinaryNames = names_of(BinaryOpList{});
static_assert(kUnaryNames.size() == UnaryOpList::size && kBinaryNames.size() == BinaryOpList::size,
              "one name per op of the lists");
static_assert(distinct(kUnaryNames) && distinct(kBinaryNames), "two ops of kernels/op_traits.h share a name");

template <class... Ops>
constexpr std::array<Saves, sizeof...(Ops)> saves_of(OpList<Ops...>) {
  return {Ops::saves...};
}
constexpr auto kUnarySaves = saves_of(UnaryOpList{});

int checked_index(int i, int size, const char* what) {
  EMBER_CHECK(i >= 0 && i < size, what, " op index ", i, " is outside its op list (", size, " ops)");
  return i;
}

}  // namespace

const char* unary_op_name(UnaryOp op) {
  return kUnaryNames[static_cast<size_t>(checked_index(static_cast<int>(op), UnaryOpList::size, "unary"))];
}
const char* binary_op_name(BinaryOp op) {
  return kBinaryNames[static_cast<size_t>(checked_index(static_cast<int>(op), BinaryOpList::size, "binary"))];
}
Saves unary_op_saves(UnaryOp op) {
  return kUnarySaves[static_cast<size_t>(checked_index(static_cast<int>(op), UnaryOpList::size, "unary"))];
}

StridedDesc strided_desc(const Tensor& t) {
  EMBER_CHECK(t.dim() <= kMaxDims, "kernels support at most ", kMaxDims, " dims, got ", describe(t));
  StridedDesc d;
  d.ndim = static_cast<int32_t>(t.dim());
  for (int64_t i = 0; i < t.dim(); ++i) {
    d.sizes[i] = t.shape()[static_cast<size_t>(i)];
    d.strides[i] = t.strides()[static_cast<size_t>(i)];
  }
  return d;
}

static const ElementwiseKernels& table(Device d) { return table_for<ElementwiseKernels>(d.type); }

void fill(Tensor& out, double value) {
  EMBER_CHECK(out.is_contiguous(), "fill: expected a contiguous output, got ", describe(out));
  if (out.numel() == 0) return;
  require(table(out.device()).fill, "fill", out.device())(out, value);
}

void copy(const Tensor& src, Tensor& dst) {
  check_same_device("copy", src, dst);
  EMBER_CHECK(src.shape() == dst.shape(), "copy: shape mismatch, source ", describe(src), " vs destination ",
              describe(dst));
  if (dst.numel() == 0) return;
  require(table(dst.device()).copy, "copy", dst.device())(src, dst);
}

void unary(UnaryOp op, const Tensor& x, Tensor& out, double scalar) {
  check_same_device(unary_op_name(op), x, out);
  check_same_dtype(unary_op_name(op), x, out);
  EMBER_CHECK(is_floating(x.dtype()), unary_op_name(op), ": expected a floating tensor, got ", describe(x));
  EMBER_CHECK(x.shape() == out.shape() && out.is_contiguous(), unary_op_name(op), ": output ", describe(out),
              " must be contiguous with the input's shape ", shape_str(x.shape()));
  if (out.numel() == 0) return;
  require(table(x.device()).unary, unary_op_name(op), x.device())(op, x, out, scalar);
}

void unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& gy, Tensor& gx, double scalar) {
  check_same_device(unary_op_name(op), gy, gx);
  check_same_dtype(unary_op_name(op), gy, gx);
  EMBER_CHECK(gy.shape() == gx.shape() && gx.is_contiguous(), unary_op_name(op), " backward: bad gradient shapes ",
              describe(gy), " / ", describe(gx));
  const Saves saves = unary_op_saves(op);
  if (saves != Saves::Nothing) {
    const Tensor& v = saves == Saves::Input ? x : y;
    const char* which = saves == Saves::Input ? " backward: the saved input " : " backward: the saved output ";
    EMBER_CHECK(v.defined() && v.shape() == gy.shape(), unary_op_name(op), which, describe(v),
                " does not match the gradient ", describe(gy));
    check_same_device(unary_op_name(op), v, gy);
    check_same_dtype(unary_op_name(op), v, gy);
  }
  if (gx.numel() == 0) return;
  require(table(gy.device()).unary_backward, unary_op_name(op), gy.device())(op, x, y, gy, gx, scalar);
}

void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
  const char* name = binary_op_name(op);
  check_same_device(name, a, b);
  check_same_device(name, a, out);
  check_same_dtype(name, a, b);
  check_same_dtype(name, a, out);
  EMBER_CHECK(is_floating(a.dtype()), name, ": expected floating tensors, got ", describe(a));
  const Shape s = broadcast_shapes(a.shape(), b.shape(), name);
  EMBER_CHECK(out.shape() == s && out.is_contiguous(), name, ": output ", describe(out),
              " must be contiguous with the broadcast shape ", shape_str(s));
  if (out.numel() == 0) return;
  require(table(a.device()).binary, name, a.device())(op, a.detach().expand(s), b.detach().expand(s), out);
}

}  // namespace ember::kernels
