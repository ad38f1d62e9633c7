// cuBLAS projections (F32 and BF16) and slot row moves on a device against
// host loops. Skips without a CUDA device, but for the error-message check.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/cuda/gemm.h"
#include "kernels/cuda/model_kernels.h"
#include "kernels/cuda/slot_kernels.h"
#include "kernels/cuda/test_util.h"
#include "kernels/math/elementwise.h"

namespace slabserve::cuda {
namespace {

std::vector<float> Random(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

std::vector<uint16_t> Bf16Bits(const std::vector<float>& values) {
  std::vector<uint16_t> bits(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    bits[i] = math::Bf16Bits(values[i]);
  }
  return bits;
}

// Needs no device: a cuBLAS failure names its status, so that callers (the
// decode benchmark telling out-of-memory from other failures) can read it.
TEST(GemmTest, CublasErrorsNameTheirStatus) {
  const absl::Status status =
      CublasStatus(CUBLAS_STATUS_ALLOC_FAILED, "cublasLtMatmul");
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(status.message().find(
                "cublasLtMatmul: cuBLAS error CUBLAS_STATUS_ALLOC_FAILED ("),
            absl::string_view::npos)
      << status.message();
}

TEST(GemmTest, LinearF32AndBf16MatchHost) {
  SKIP_WITHOUT_CUDA_DEVICE();
  const int rows = 7, in = 96, out = 40;
  const std::vector<float> x = Random(rows * in, 1), w = Random(out * in, 2);
  const std::vector<uint16_t> xb = Bf16Bits(x), wb = Bf16Bits(w);
  auto gemm = Gemm::Create(nullptr);
  ASSERT_TRUE(gemm.ok()) << gemm.status();
  DeviceVector<float> dx(x), dw(w), dy(rows * out);
  DeviceVector<uint16_t> dxb(xb), dwb(wb);
  ASSERT_TRUE((*gemm)
                  ->Linear(dx.get(), rows, {GemmType::kF32, dw.get(), out, in},
                           dy.get())
                  .ok());
  std::vector<float> y = dy.Read();
  ASSERT_TRUE((*gemm)
                  ->Linear(dxb.get(), rows,
                           {GemmType::kBf16, dwb.get(), out, in}, dy.get())
                  .ok());
  std::vector<float> yb = dy.Read();
  for (int r = 0; r < rows; ++r) {
    for (int o = 0; o < out; ++o) {
      double want = 0.0, want_bf16 = 0.0;
      for (int i = 0; i < in; ++i) {
        want += static_cast<double>(x[r * in + i]) * w[o * in + i];
        want_bf16 += static_cast<double>(math::Bf16ToFloat(xb[r * in + i])) *
                     math::Bf16ToFloat(wb[o * in + i]);
      }
      EXPECT_NEAR(y[r * out + o], want, 1e-5);
      EXPECT_NEAR(yb[r * out + o], want_bf16, 1e-4);
    }
  }
}

TEST(GemmTest, BlockDiagonalMatchesHost) {
  SKIP_WITHOUT_CUDA_DEVICE();
  const int rows = 5, blocks = 3, bw = 8, R = blocks * bw;
  const std::vector<float> x = Random(rows * R, 3),
                           g = Random(blocks * bw * bw, 4);
  auto gemm = Gemm::Create(nullptr);
  ASSERT_TRUE(gemm.ok()) << gemm.status();
  DeviceVector<float> dx(x), dg(g), dy(rows * R);
  ASSERT_TRUE(
      (*gemm)
          ->BlockDiagonal(dx.get(), rows, R, dg.get(), blocks, bw, dy.get())
          .ok());
  const std::vector<float> y = dy.Read();
  for (int r = 0; r < rows; ++r) {
    for (int h = 0; h < blocks; ++h) {
      for (int j = 0; j < bw; ++j) {
        double want = 0.0;
        for (int i = 0; i < bw; ++i) {
          want += static_cast<double>(x[r * R + h * bw + i]) *
                  g[(h * bw + i) * bw + j];
        }
        EXPECT_NEAR(y[r * R + h * bw + j], want, 1e-5);
      }
    }
  }
}

// The first rows of a product are the same bits whether they ride alone or
// with up to 2,048 others (see gemm.h).
TEST(GemmTest, RowsDoNotDependOnTheRowCount) {
  SKIP_WITHOUT_CUDA_DEVICE();
  const int kMaxRows = 2048, in = 512, out = 640, blocks = 8, bw = 64;
  const std::vector<float> x = Random(kMaxRows * in, 6),
                           w = Random(out * in, 7);
  const std::vector<uint16_t> xb = Bf16Bits(x), wb = Bf16Bits(w);
  auto gemm = Gemm::Create(nullptr);
  ASSERT_TRUE(gemm.ok()) << gemm.status();
  DeviceVector<float> dx(x), dw(w), dy(kMaxRows * out);
  DeviceVector<uint16_t> dxb(xb), dwb(wb);
  const std::vector<float> g = Random(blocks * bw * bw, 8);
  DeviceVector<float> dg(g);
  // Each product at `rows` rows, read back.
  auto linear = [&](bool bf16, int rows) {
    const DeviceMatrix weight{bf16 ? GemmType::kBf16 : GemmType::kF32,
                              bf16 ? static_cast<void*>(dwb.get()) : dw.get(),
                              out, in};
    const void* input = bf16 ? static_cast<void*>(dxb.get()) : dx.get();
    EXPECT_TRUE((*gemm)->Linear(input, rows, weight, dy.get()).ok());
    std::vector<float> y = dy.Read();
    y.resize(static_cast<size_t>(rows) * out);
    return y;
  };
  auto block_diagonal = [&](int rows) {
    EXPECT_TRUE(
        (*gemm)
            ->BlockDiagonal(dx.get(), rows, in, dg.get(), blocks, bw, dy.get())
            .ok());
    std::vector<float> y = dy.Read();
    y.resize(static_cast<size_t>(rows) * in);
    return y;
  };
  for (bool bf16 : {false, true}) {
    const std::vector<float> all = linear(bf16, kMaxRows);
    const std::vector<float> gates = block_diagonal(kMaxRows);
    for (int rows : {1, 2, 7, 64, 333, 1000}) {
      const std::vector<float> some = linear(bf16, rows);
      EXPECT_EQ(
          std::memcmp(some.data(), all.data(), sizeof(float) * some.size()), 0)
          << (bf16 ? "bf16" : "f32") << " linear, " << rows << " rows";
      const std::vector<float> some_gates = block_diagonal(rows);
      EXPECT_EQ(std::memcmp(some_gates.data(), gates.data(),
                            sizeof(float) * some_gates.size()),
                0)
          << "block diagonal, " << rows << " rows";
    }
  }
}

TEST(SlotKernelsTest, ZeroCopyGatherScatter) {
  SKIP_WITHOUT_CUDA_DEVICE();
  const int slots = 6, row = 10;
  const std::vector<float> slab = Random(slots * row, 5);
  DeviceVector<float> dslab(slab), dbuffer(2 * row);
  DeviceVector<int> from(std::vector<int>{1, 4}), to(std::vector<int>{2, 5}),
      zero(std::vector<int>{0});
  const size_t bytes = sizeof(float) * row;
  ASSERT_EQ(CopyRows(dslab.get(), bytes, from.get(), to.get(), 2, nullptr),
            cudaSuccess);
  ASSERT_EQ(
      GatherRows(dslab.get(), bytes, from.get(), 2, dbuffer.get(), nullptr),
      cudaSuccess);
  ASSERT_EQ(ZeroRows(dslab.get(), bytes, zero.get(), 1, nullptr), cudaSuccess);
  const std::vector<float> moved = dslab.Read();
  const std::vector<float> gathered = dbuffer.Read();
  for (int i = 0; i < row; ++i) {
    EXPECT_EQ(moved[0 * row + i], 0.0f);
    EXPECT_EQ(moved[2 * row + i], slab[1 * row + i]);
    EXPECT_EQ(moved[5 * row + i], slab[4 * row + i]);
    EXPECT_EQ(moved[3 * row + i], slab[3 * row + i]);
    EXPECT_EQ(gathered[i], slab[1 * row + i]);
    EXPECT_EQ(gathered[row + i], slab[4 * row + i]);
  }
  ASSERT_EQ(
      ScatterRows(dbuffer.get(), bytes, zero.get(), 1, dslab.get(), nullptr),
      cudaSuccess);
  EXPECT_EQ(dslab.Read()[0], slab[row]);
}

}  // namespace
}  // namespace slabserve::cuda
