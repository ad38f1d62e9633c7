"""nvcc through genrules: CUDA code builds only under --config=cuda."""

CUDA_ONLY = select({
    "//third_party/build_defs:cuda_enabled": [],
    "//conditions:default": ["//third_party/build_defs:incompatible"],
})

def if_cuda(deps):
    """`deps` when CUDA is enabled, nothing otherwise (so @cuda is never fetched)."""
    return select({
        "//third_party/build_defs:cuda_enabled": deps,
        "//conditions:default": [],
    })

def cuda_library(name, srcs, hdrs = [], device_hdrs = [], deps = [], **kwargs):
    """Compiles each .cu with nvcc (sm_80, sm_90 + PTX) into one cc_library.

    `device_hdrs`: headers of other packages that the .cu files include (the
    nvcc genrule sees only the files it lists); their libraries go in `deps`.
    """
    objs = []
    for src in srcs:
        base = src.split("/")[-1][:-len(".cu")]
        obj = "_cuda_objs/%s/%s.pic.o" % (name, base)
        native.genrule(
            name = "%s_%s_nvcc" % (name, base),
            srcs = [src] + hdrs + device_hdrs,
            outs = [obj],
            cmd = ("/usr/local/cuda/bin/nvcc -std=c++17 -O3 -Xcompiler=-fPIC " +
                   "-gencode=arch=compute_80,code=sm_80 " +
                   "-gencode=arch=compute_90,code=sm_90 " +
                   "-gencode=arch=compute_90,code=compute_90 " +
                   "-I. -I$(GENDIR) -c $(location %s) -o $@" % src),
            target_compatible_with = CUDA_ONLY,
        )
        objs.append(obj)
    native.cc_library(
        name = name,
        srcs = objs,
        hdrs = hdrs,
        deps = deps + if_cuda(["@cuda//:cudart"]),
        target_compatible_with = CUDA_ONLY,
        **kwargs
    )
