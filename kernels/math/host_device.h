// SLAB_HD marks a function compiled for both the host (gcc, the CPU tests)
// and the device (nvcc, the CUDA kernels), so one definition of each
// per-element formula serves both and is unit-tested on the CPU.
#ifndef SLABSERVE_KERNELS_MATH_HOST_DEVICE_H_
#define SLABSERVE_KERNELS_MATH_HOST_DEVICE_H_

#if defined(__CUDACC__)
#define SLAB_HD __host__ __device__ __forceinline__
#else
#define SLAB_HD inline
#endif

#endif  // SLABSERVE_KERNELS_MATH_HOST_DEVICE_H_
