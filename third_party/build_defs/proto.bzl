"""protoc-driven rules: C++ (with gRPC) and Python stubs from .proto files."""

def _protoc_cmd(srcs, out_flags):
    # Import paths are relative to the package holding the .proto files, so the
    # proto package slabserve.v1 lives at slabserve/v1/ in every language.
    pkg = native.package_name()
    return ("/usr/bin/protoc -I%s " % pkg + out_flags.replace("%s", pkg) + " " +
            " ".join(["$(location %s)" % s for s in srcs]))

def cc_grpc_proto_library(name, srcs, deps = [], **kwargs):
    """C++ messages and gRPC services for `srcs` (one cc_library)."""
    hdrs = []
    cc_srcs = []
    for src in srcs:
        base = src[:-len(".proto")]
        hdrs += [base + ".pb.h", base + ".grpc.pb.h"]
        cc_srcs += [base + ".pb.cc", base + ".grpc.pb.cc"]
    native.genrule(
        name = name + "_protoc",
        srcs = srcs,
        outs = hdrs + cc_srcs,
        cmd = _protoc_cmd(srcs, "--cpp_out=$(GENDIR)/%s " +
                                "--plugin=protoc-gen-grpc=/usr/bin/grpc_cpp_plugin " +
                                "--grpc_out=$(GENDIR)/%s"),
    )
    native.cc_library(
        name = name,
        srcs = cc_srcs,
        hdrs = hdrs,
        # Generated code includes "slabserve/v1/x.pb.h", relative to this package.
        includes = ["."],
        deps = deps + [
            "//third_party/system:grpc++",
            "//third_party/system:protobuf",
        ],
        **kwargs
    )

def py_grpc_proto_library(name, srcs, **kwargs):
    """Python messages (_pb2.py) and gRPC stubs (_pb2_grpc.py) for `srcs`."""
    outs = []
    for src in srcs:
        base = src[:-len(".proto")]
        outs += [base + "_pb2.py", base + "_pb2_grpc.py"]
    native.genrule(
        name = name,
        srcs = srcs,
        outs = outs,
        cmd = _protoc_cmd(srcs, "--python_out=$(GENDIR)/%s " +
                                "--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin " +
                                "--grpc_python_out=$(GENDIR)/%s"),
        **kwargs
    )
