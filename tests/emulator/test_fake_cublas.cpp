/// @file tests/emulator/test_fake_cublas.cpp @brief Tests of the emulated cuBLAS (kernels/cuda/emulator/cublas.cpp) against a naive reference: transposes, leading dimensions, strided batches, alpha/beta, documented validation errors, handles and streams, operands that are not device memory.
#include <cublas_v2.h>

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "tests/emulator/fake_library_util.h"

using fake_test::DeviceBuffer;
using fake_test::random_floats;

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

/// A cuBLAS handle for one test.
struct Handle {
  cublasHandle_t h = nullptr;
  Handle() { REQUIRE(cublasCreate(&h) == CUBLAS_STATUS_SUCCESS); }
  ~Handle() { cublasDestroy(h); }
};

/// A dense row-major matrix of doubles.
struct Dense {
  int rows, cols;
  std::vector<double> v;
  Dense(int r, int c) : rows(r), cols(c), v(std::size_t(r) * c) {}
  double& operator()(int i, int j) { return v[std::size_t(i) * cols + j]; }
};

/// op(X) as a dense matrix, from X stored column-major (`stored_rows` x `stored_cols`, leading dimension
/// ld): X(i, j) = x[i + j*ld]; op(X) = X, or X^T for CUBLAS_OP_T / CUBLAS_OP_C.
Dense op_dense(const std::vector<float>& x, int stored_rows, int stored_cols, int ld, cublasOperation_t op,
               std::size_t offset = 0) {
  const bool t = op != CUBLAS_OP_N;
  Dense d(t ? stored_cols : stored_rows, t ? stored_rows : stored_cols);
  for (int i = 0; i < stored_rows; ++i)
    for (int j = 0; j < stored_cols; ++j) (t ? d(j, i) : d(i, j)) = x[offset + i + std::size_t(j) * ld];
  return d;
}

/// The expected C (column-major, leading dimension ldc, elements outside the m x n matrix kept):
/// alpha * opA * opB + beta * C0, with beta == 0 ignoring C0.
std::vector<float> expected_gemm(Dense opa, Dense opb, float alpha, float beta, std::vector<float> c0, int ldc,
                                 std::size_t offset = 0) {
  for (int i = 0; i < opa.rows; ++i)
    for (int j = 0; j < opb.cols; ++j) {
      double dot = 0;
      for (int p = 0; p < opa.cols; ++p) dot += opa(i, p) * opb(p, j);
      float& c = c0[offset + i + std::size_t(j) * ldc];
      c = static_cast<float>(alpha * dot + (beta == 0 ? 0.0 : beta * double(c)));
    }
  return c0;
}

/// Elementwise |a - b| <= tol * (1 + |b|), NaN only where expected.
void check_close(const std::vector<float>& got, const std::vector<float>& want, float tol = 1e-5f) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i << ": got " << got[i] << ", want " << want[i]);
    if (std::isnan(want[i])) {
      CHECK(std::isnan(got[i]));
    } else {
      CHECK(std::abs(got[i] - want[i]) <= tol * (1 + std::abs(want[i])));
    }
  }
}

/// Stored rows x cols column-major with leading dimension ld; the padding rows hold NaN, so reading
/// them shows up in the result.
std::vector<float> padded_matrix(int rows, int cols, int ld, unsigned seed) {
  std::vector<float> v = random_floats(std::size_t(ld) * cols, seed);
  for (int j = 0; j < cols; ++j)
    for (int i = rows; i < ld; ++i) v[i + std::size_t(j) * ld] = kNaN;
  return v;
}

const char* op_name(cublasOperation_t op) { return op == CUBLAS_OP_N ? "N" : op == CUBLAS_OP_T ? "T" : "C"; }

}  // namespace

TEST_CASE("cublasSgemm: every transpose combination with leading dimensions larger than the matrices",
          "[fake][cublas]") {
  Handle h;
  const int m = 5, n = 7, k = 3;
  const float alpha = 1.5f, beta = -0.5f;
  for (cublasOperation_t ta : {CUBLAS_OP_N, CUBLAS_OP_T, CUBLAS_OP_C})
    for (cublasOperation_t tb : {CUBLAS_OP_N, CUBLAS_OP_T, CUBLAS_OP_C}) {
      INFO("op(A) " << op_name(ta) << ", op(B) " << op_name(tb));
      const int ar = ta == CUBLAS_OP_N ? m : k, ac = ta == CUBLAS_OP_N ? k : m;
      const int br = tb == CUBLAS_OP_N ? k : n, bc = tb == CUBLAS_OP_N ? n : k;
      const int lda = ar + 2, ldb = br + 3, ldc = m + 4;
      const std::vector<float> a = padded_matrix(ar, ac, lda, 1), b = padded_matrix(br, bc, ldb, 2);
      const std::vector<float> c0 = random_floats(std::size_t(ldc) * n, 3);  // padding of C must stay
      DeviceBuffer<float> da(a), db(b), dc(c0);
      REQUIRE(cublasSgemm(h.h, ta, tb, m, n, k, &alpha, da.get(), lda, db.get(), ldb, &beta, dc.get(), ldc) ==
              CUBLAS_STATUS_SUCCESS);
      check_close(dc.download(), expected_gemm(op_dense(a, ar, ac, lda, ta), op_dense(b, br, bc, ldb, tb), alpha,
                                               beta, c0, ldc));
    }
}

TEST_CASE("cublasSgemm: beta 0 never reads C (NaN there stays out), beta 1 accumulates, alpha 0 never reads A and B",
          "[fake][cublas]") {
  Handle h;
  const int m = 4, n = 3, k = 6;
  const std::vector<float> a = random_floats(m * k, 4), b = random_floats(k * n, 5);
  const Dense opa = op_dense(a, m, k, m, CUBLAS_OP_N), opb = op_dense(b, k, n, k, CUBLAS_OP_N);
  DeviceBuffer<float> da(a), db(b), dc(std::vector<float>(m * n, kNaN));
  const float alpha = 2.0f, zero = 0.0f, one = 1.0f;

  REQUIRE(cublasSgemm(h.h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &alpha, da.get(), m, db.get(), k, &zero, dc.get(), m) ==
          CUBLAS_STATUS_SUCCESS);
  const std::vector<float> once = expected_gemm(opa, opb, alpha, 0.0f, std::vector<float>(m * n, kNaN), m);
  check_close(dc.download(), once);

  REQUIRE(cublasSgemm(h.h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &alpha, da.get(), m, db.get(), k, &one, dc.get(), m) ==
          CUBLAS_STATUS_SUCCESS);
  check_close(dc.download(), expected_gemm(opa, opb, alpha, 1.0f, once, m));

  DeviceBuffer<float> nan_a(std::vector<float>(m * k, kNaN));
  const float half = 0.5f;
  REQUIRE(cublasSgemm(h.h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &zero, nan_a.get(), m, db.get(), k, &half, dc.get(),
                      m) == CUBLAS_STATUS_SUCCESS);
  std::vector<float> halved = expected_gemm(opa, opb, alpha, 1.0f, once, m);
  for (float& x : halved) x *= 0.5f;
  check_close(dc.download(), halved);
}

TEST_CASE("cublasSgemm: alpha and beta are read at the call (host pointer mode)", "[fake][cublas]") {
  Handle h;
  const int m = 3, n = 2, k = 2;
  const std::vector<float> a = random_floats(m * k, 6), b = random_floats(k * n, 7);
  DeviceBuffer<float> da(a), db(b), dc(m * n);
  float alpha = 3.0f, beta = 0.0f;
  REQUIRE(cublasSgemm(h.h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &alpha, da.get(), m, db.get(), k, &beta, dc.get(), m) ==
          CUBLAS_STATUS_SUCCESS);
  alpha = 100.0f, beta = kNaN;  // changed before the queued work is synchronized: must not matter
  check_close(dc.download(), expected_gemm(op_dense(a, m, k, m, CUBLAS_OP_N), op_dense(b, k, n, k, CUBLAS_OP_N), 3.0f,
                                           0.0f, std::vector<float>(m * n), m));
}

TEST_CASE("cublasSgemmStridedBatched: batch strides larger than a matrix, stride 0 broadcasts an operand",
          "[fake][cublas]") {
  Handle h;
  const int m = 4, n = 5, k = 3, batch = 3;
  const float alpha = 0.75f, beta = 0.25f;
  for (bool broadcast_a : {false, true}) {
    INFO((broadcast_a ? "A shared by the batch (stride 0)" : "B shared by the batch (stride 0)"));
    // op(A) = A^T: A stored k x m (lda k + 1); B stored k x n (ldb k); C m x n (ldc m + 1).
    const int lda = k + 1, ldb = k, ldc = m + 1;
    const long long sa = broadcast_a ? 0 : lda * m + 7, sb = broadcast_a ? ldb * n + 2 : 0, sc = ldc * n + 3;
    const std::vector<float> a = random_floats(std::size_t(broadcast_a ? 1 : batch) * (lda * m + 7), 8);
    const std::vector<float> b = random_floats(std::size_t(broadcast_a ? batch : 1) * (ldb * n + 2), 9);
    const std::vector<float> c0 = random_floats(std::size_t(batch) * sc, 10);
    DeviceBuffer<float> da(a), db(b), dc(c0);
    REQUIRE(cublasSgemmStridedBatched(h.h, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &alpha, da.get(), lda, sa, db.get(), ldb,
                                      sb, &beta, dc.get(), ldc, sc, batch) == CUBLAS_STATUS_SUCCESS);
    std::vector<float> want = c0;
    for (int i = 0; i < batch; ++i)
      want = expected_gemm(op_dense(a, k, m, lda, CUBLAS_OP_T, i * sa), op_dense(b, k, n, ldb, CUBLAS_OP_N, i * sb),
                           alpha, beta, want, ldc, i * sc);
    check_close(dc.download(), want);
  }
}

TEST_CASE("cublasSgemmStridedBatched: documented argument errors return their status and queue nothing",
          "[fake][cublas]") {
  Handle h;
  const int m = 4, n = 3, k = 2;
  DeviceBuffer<float> a(64), b(64);
  const std::vector<float> c0 = random_floats(64, 11);
  DeviceBuffer<float> c(c0);
  const float one = 1.0f;
  struct Case {
    const char* what;
    cublasOperation_t ta, tb;
    int m, n, k, lda, ldb, ldc, batch;
    const float *alpha, *beta;
    cublasStatus_t want;
  };
  const Case cases[] = {
      {"valid", CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, m, k, m, 1, &one, &one, CUBLAS_STATUS_SUCCESS},
      {"m < 0", CUBLAS_OP_N, CUBLAS_OP_N, -1, n, k, m, k, m, 1, &one, &one, CUBLAS_STATUS_INVALID_VALUE},
      {"n < 0", CUBLAS_OP_N, CUBLAS_OP_N, m, -1, k, m, k, m, 1, &one, &one, CUBLAS_STATUS_INVALID_VALUE},
      {"k < 0", CUBLAS_OP_N, CUBLAS_OP_N, m, n, -1, m, k, m, 1, &one, &one, CUBLAS_STATUS_INVALID_VALUE},
      {"batchCount < 0", CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, m, k, m, -1, &one, &one, CUBLAS_STATUS_INVALID_VALUE},
      {"transa CONJG", CUBLAS_OP_CONJG, CUBLAS_OP_N, m, n, k, m, k, m, 1, &one, &one, CUBLAS_STATUS_INVALID_VALUE},
      {"transb CONJG", CUBLAS_OP_N, CUBLAS_OP_CONJG, m, n, k, m, k, m, 1, &one, &one, CUBLAS_STATUS_INVALID_VALUE},
      {"lda < m for N", CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, m - 1, k, m, 1, &one, &one, CUBLAS_STATUS_INVALID_VALUE},
      {"lda = m passes for N", CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, m, k, m, 1, &one, &one, CUBLAS_STATUS_SUCCESS},
      {"lda < k for T", CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, k - 1, k, m, 1, &one, &one, CUBLAS_STATUS_INVALID_VALUE},
      {"lda = k passes for T", CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, k, k, m, 1, &one, &one, CUBLAS_STATUS_SUCCESS},
      {"ldb < k for N", CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, m, k - 1, m, 1, &one, &one, CUBLAS_STATUS_INVALID_VALUE},
      {"ldb < n for T", CUBLAS_OP_N, CUBLAS_OP_T, m, n, k, m, n - 1, m, 1, &one, &one, CUBLAS_STATUS_INVALID_VALUE},
      {"ldc < m", CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, m, k, m - 1, 1, &one, &one, CUBLAS_STATUS_INVALID_VALUE},
      {"lda 0 with m 0 (max(1, m))", CUBLAS_OP_N, CUBLAS_OP_N, 0, n, k, 0, k, 1, 1, &one, &one,
       CUBLAS_STATUS_INVALID_VALUE},
      {"alpha null", CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, m, k, m, 1, nullptr, &one, CUBLAS_STATUS_INVALID_VALUE},
      {"beta null", CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, m, k, m, 1, &one, nullptr, CUBLAS_STATUS_INVALID_VALUE},
  };
  for (const Case& t : cases) {
    INFO(t.what);
    const bool valid = t.want == CUBLAS_STATUS_SUCCESS;
    CHECK(cublasSgemmStridedBatched(h.h, t.ta, t.tb, t.m, t.n, t.k, t.alpha, a.get(), t.lda, 0, b.get(), t.ldb, 0,
                                    t.beta, c.get(), t.ldc, 0, t.batch) == t.want);
    if (!valid) CHECK(c.download() == c0);  // nothing was queued
    c.upload(c0);
  }
  SECTION("a null, destroyed or never created handle is CUBLAS_STATUS_NOT_INITIALIZED") {
    cublasHandle_t gone = nullptr;
    REQUIRE(cublasCreate(&gone) == CUBLAS_STATUS_SUCCESS);
    REQUIRE(cublasDestroy(gone) == CUBLAS_STATUS_SUCCESS);
    for (cublasHandle_t bad : {static_cast<cublasHandle_t>(nullptr), gone}) {
      CHECK(cublasSgemm(bad, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, a.get(), m, b.get(), k, &one, c.get(), m) ==
            CUBLAS_STATUS_NOT_INITIALIZED);
      CHECK(cublasSetStream(bad, nullptr) == CUBLAS_STATUS_NOT_INITIALIZED);
    }
    CHECK(cublasDestroy(gone) == CUBLAS_STATUS_NOT_INITIALIZED);
    CHECK(c.download() == c0);
  }
}

TEST_CASE("cublasSgemm: m, n or batch 0, and alpha 0 with beta 1, leave C alone", "[fake][cublas]") {
  Handle h;
  const std::vector<float> c0 = random_floats(16, 12);
  DeviceBuffer<float> c(c0);
  const float one = 1.0f, zero = 0.0f;
  // A and B are null: never read, so no fault either.
  CHECK(cublasSgemm(h.h, CUBLAS_OP_N, CUBLAS_OP_N, 0, 4, 4, &one, nullptr, 1, nullptr, 4, &zero, c.get(), 1) ==
        CUBLAS_STATUS_SUCCESS);
  CHECK(cublasSgemm(h.h, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, &zero, nullptr, 4, nullptr, 4, &one, c.get(), 4) ==
        CUBLAS_STATUS_SUCCESS);
  CHECK(cublasSgemmStridedBatched(h.h, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, &one, nullptr, 4, 16, nullptr, 4, 16, &zero,
                                  c.get(), 4, 16, 0) == CUBLAS_STATUS_SUCCESS);
  CHECK_FALSE(fake_test::device_faulted());
  CHECK(c.download() == c0);
  // k 0 scales C by beta without reading A or B.
  const float two = 2.0f;
  CHECK(cublasSgemm(h.h, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 0, &one, nullptr, 4, nullptr, 1, &two, c.get(), 4) ==
        CUBLAS_STATUS_SUCCESS);
  std::vector<float> doubled = c0;
  for (float& x : doubled) x *= 2.0f;
  check_close(c.download(), doubled);
}

TEST_CASE("cublasSgemm: host memory as an operand faults the device and the work does not run", "[fake][cublas]") {
  Handle h;
  const int m = 3, n = 3, k = 3;
  std::vector<float> host_a = random_floats(m * k, 13);
  DeviceBuffer<float> b(random_floats(k * n, 14));
  const std::vector<float> c0 = random_floats(m * n, 15);
  DeviceBuffer<float> c(c0);
  const float one = 1.0f, zero = 0.0f;
  // Argument validation cannot tell host from device memory: the call succeeds, the queued work faults.
  REQUIRE(cublasSgemm(h.h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, host_a.data(), m, b.get(), k, &zero, c.get(), m) ==
          CUBLAS_STATUS_SUCCESS);
  CHECK(fake_test::device_faulted());
  std::vector<float> after(m * n);
  REQUIRE(cudaMemcpy(after.data(), c.get(), c.bytes(), cudaMemcpyDeviceToHost) == cudaSuccess);
  CHECK(after == c0);
}

TEST_CASE("cuBLAS handle settings: stream, math mode, pointer mode, workspace, status texts", "[fake][cublas]") {
  Handle h;
  CHECK(cublasCreate(nullptr) == CUBLAS_STATUS_INVALID_VALUE);

  cudaStream_t s = nullptr, got = reinterpret_cast<cudaStream_t>(1);
  REQUIRE(cudaStreamCreate(&s) == cudaSuccess);
  CHECK(cublasGetStream(h.h, &got) == CUBLAS_STATUS_SUCCESS);
  CHECK(got == nullptr);  // the default stream until set
  CHECK(cublasSetStream(h.h, s) == CUBLAS_STATUS_SUCCESS);
  CHECK(cublasGetStream(h.h, &got) == CUBLAS_STATUS_SUCCESS);
  CHECK(got == s);
  CHECK(cublasGetStream(h.h, nullptr) == CUBLAS_STATUS_INVALID_VALUE);

  // The GEMM runs on the handle's stream: synchronizing that stream is enough to read the result.
  DeviceBuffer<float> a(std::vector<float>{2.0f}), b(std::vector<float>{3.0f}), c(std::vector<float>{kNaN});
  const float one = 1.0f, zero = 0.0f;
  REQUIRE(cublasSgemm(h.h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 1, &one, a.get(), 1, b.get(), 1, &zero, c.get(), 1) ==
          CUBLAS_STATUS_SUCCESS);
  REQUIRE(cudaStreamSynchronize(s) == cudaSuccess);
  float result = 0;
  REQUIRE(cudaMemcpy(&result, c.get(), sizeof result, cudaMemcpyDeviceToHost) == cudaSuccess);
  CHECK(result == 6.0f);
  CHECK(cublasSetStream(h.h, nullptr) == CUBLAS_STATUS_SUCCESS);
  REQUIRE(cudaStreamDestroy(s) == cudaSuccess);

  cublasMath_t math{};
  CHECK(cublasGetMathMode(h.h, &math) == CUBLAS_STATUS_SUCCESS);
  CHECK(math == CUBLAS_DEFAULT_MATH);
  const auto tf32_strict =
      static_cast<cublasMath_t>(CUBLAS_TF32_TENSOR_OP_MATH | CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION);
  CHECK(cublasSetMathMode(h.h, tf32_strict) == CUBLAS_STATUS_SUCCESS);
  CHECK(cublasGetMathMode(h.h, &math) == CUBLAS_STATUS_SUCCESS);
  CHECK(math == tf32_strict);
  CHECK(cublasSetMathMode(h.h, static_cast<cublasMath_t>(6)) == CUBLAS_STATUS_INVALID_VALUE);
  CHECK(cublasGetMathMode(h.h, nullptr) == CUBLAS_STATUS_INVALID_VALUE);

  cublasPointerMode_t mode{};
  CHECK(cublasSetPointerMode(h.h, CUBLAS_POINTER_MODE_HOST) == CUBLAS_STATUS_SUCCESS);
  CHECK(cublasSetPointerMode(h.h, CUBLAS_POINTER_MODE_DEVICE) == CUBLAS_STATUS_NOT_SUPPORTED);
  CHECK(cublasGetPointerMode(h.h, &mode) == CUBLAS_STATUS_SUCCESS);
  CHECK(mode == CUBLAS_POINTER_MODE_HOST);

  DeviceBuffer<char> ws(1024);
  CHECK(cublasSetWorkspace(h.h, ws.get(), ws.bytes()) == CUBLAS_STATUS_SUCCESS);
  CHECK(cublasSetWorkspace(h.h, ws.get() + 4, 512) == CUBLAS_STATUS_INVALID_VALUE);  // not 256-byte aligned
  CHECK(cublasSetWorkspace(h.h, nullptr, 0) == CUBLAS_STATUS_SUCCESS);

  CHECK(std::string(cublasGetStatusName(CUBLAS_STATUS_INVALID_VALUE)) == "CUBLAS_STATUS_INVALID_VALUE");
  CHECK(std::string(cublasGetStatusName(CUBLAS_STATUS_NOT_INITIALIZED)) == "CUBLAS_STATUS_NOT_INITIALIZED");
  CHECK(std::string(cublasGetStatusString(CUBLAS_STATUS_SUCCESS)) == "the operation completed successfully");
  CHECK(std::string(cublasGetStatusString(CUBLAS_STATUS_NOT_SUPPORTED)) ==
        "the functionality requested is not supported");
}

TEST_CASE("cuBLAS handles belong to the device current at cublasCreate", "[fake][cublas]") {
  if (!fake_test::has_two_devices()) {
    WARN("the emulated runtime has one device: the cross-device checks need two");
    return;
  }
  Handle h;  // on device 0
  REQUIRE(cudaSetDevice(1) == cudaSuccess);
  cudaStream_t other = nullptr;
  REQUIRE(cudaStreamCreate(&other) == cudaSuccess);
  DeviceBuffer<float> a(1), b(1), c(1);
  const float one = 1.0f;
  CHECK(cublasSgemm(h.h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 1, &one, a.get(), 1, b.get(), 1, &one, c.get(), 1) ==
        CUBLAS_STATUS_EXECUTION_FAILED);
  REQUIRE(cudaSetDevice(0) == cudaSuccess);
  CHECK(cublasSetStream(h.h, other) == CUBLAS_STATUS_INVALID_VALUE);
  REQUIRE(cudaSetDevice(1) == cudaSuccess);
  CHECK(cudaStreamDestroy(other) == cudaSuccess);
  REQUIRE(cudaSetDevice(0) == cudaSuccess);
}
