/// @file kernels/transfer.cpp @brief Cross-device copies of contiguous tensors through the device backends' host transfers.
#include "kernels/transfer.h"

#include "kernels/dispatch.h"

namespace ember::kernels {

Tensor transfer(const Tensor& src, Device to) {
  EMBER_CHECK(src.is_contiguous(), "transfer: expected a contiguous tensor, got ", describe(src));
  if (to.is_cuda())
    EMBER_CHECK(to.index < device_count(DeviceType::CUDA), "to(", to.str(), "): no such device (",
                device_count(DeviceType::CUDA), " CUDA device(s) available)");
  Tensor out = empty(src.shape(), TensorOptions{src.dtype(), to});
  if (src.numel() == 0) return out;
  if (src.device().is_cpu()) {
    require(table_for<TransferKernels>(to.type).from_host, "to(device)", to)(src.data_ptr(), out);
  } else if (to.is_cpu()) {
    require(table_for<TransferKernels>(src.device().type).to_host, "to(device)", src.device())(src, out.data_ptr());
  } else {
    Tensor host = transfer(src, Device::cpu());
    return transfer(host, to);
  }
  return out;
}

void synchronize(Device d) {
  if (d.is_cpu()) return;
  if (auto fn = table_for<TransferKernels>(d.type).synchronize) require(fn, "synchronize", d)();
}

int device_count(DeviceType t) {
  if (t == DeviceType::CPU) return 1;
  auto fn = table_for<TransferKernels>(t).device_count;
  return fn ? fn() : 0;
}

}  // namespace ember::kernels
