// Elementwise and row-wise kernels on raw f32 arrays: normalization,
// rotary embeddings, softmax (activations: vector_math.h). Every function is
// single-threaded and computes each output from its own inputs in a fixed
// order, so results do not depend on batch composition; callers parallelize
// over rows.
#ifndef SLABSERVE_KERNELS_CPU_OPS_H_
#define SLABSERVE_KERNELS_CPU_OPS_H_

#include <cstdint>

namespace slabserve::cpu {

// The f32 value rounded to bfloat16 (round to nearest, ties to even) and
// widened back.
float RoundToBf16(float x);

// y[r] = x[r] · rsqrt(mean(x[r]²) + eps) ⊙ scale for rows of width `dim`
// (x and y may alias). `scale` is the full multiplier (e.g. 1 + w).
void RmsNorm(const float* x, int64_t rows, int dim, const float* scale,
             float eps, float* y);

// log(1 + exp(x)), without overflow for large x.
double Softplus(double x);

// cos/sin of θ_j = position · theta^(-2j/rotary_dims), j < rotary_dims/2.
void RotaryAngles(int64_t position, int rotary_dims, double theta, float* cos,
                  float* sin);
// NeoX rotate-half on the first `rotary_dims` entries of x, pairing j with
// j + rotary_dims/2; later entries are untouched.
void ApplyRotary(float* x, int rotary_dims, const float* cos, const float* sin);

// x = softmax(x) over n entries, max-subtracted, summed in index order.
void SoftmaxInPlace(float* x, int n);

// Index of the largest of n values; ties go to the lowest index.
int ArgMax(const float* x, int n);

}  // namespace slabserve::cpu

#endif  // SLABSERVE_KERNELS_CPU_OPS_H_
