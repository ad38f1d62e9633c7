// Compiles the code between SLABSERVE_TARGET_PUSH("features") and
// SLABSERVE_TARGET_POP for extra instruction sets (GCC target syntax, e.g.
// "avx512f"), for kernels chosen at run time by the CPU's features.
#ifndef SLABSERVE_KERNELS_CPU_TARGET_H_
#define SLABSERVE_KERNELS_CPU_TARGET_H_

#define SLABSERVE_PRAGMA(...) _Pragma(#__VA_ARGS__)

#if defined(__clang__)
#define SLABSERVE_TARGET_PUSH(features)                                    \
  SLABSERVE_PRAGMA(clang attribute push(__attribute__((target(features))), \
                                        apply_to = function))
#define SLABSERVE_TARGET_POP SLABSERVE_PRAGMA(clang attribute pop)
#else
#define SLABSERVE_TARGET_PUSH(features) \
  SLABSERVE_PRAGMA(GCC push_options) SLABSERVE_PRAGMA(GCC target(features))
#define SLABSERVE_TARGET_POP SLABSERVE_PRAGMA(GCC pop_options)
#endif

#if defined(__x86_64__)
namespace slabserve::cpu {
// Whether this CPU has AVX-512F, asked once: the run-time choice of every
// kernel compiled with SLABSERVE_TARGET_PUSH("avx512f").
inline bool CpuHasAvx512F() {
  static const bool has = __builtin_cpu_supports("avx512f");
  return has;
}
}  // namespace slabserve::cpu
#endif

#endif  // SLABSERVE_KERNELS_CPU_TARGET_H_
