"""A fuzz target built two ways: a libFuzzer binary under --config=fuzz, and,
in every build, a test that replays its seed corpus."""

def slab_fuzzer(name, srcs, deps, corpus):
    native.cc_binary(
        name = name,
        srcs = srcs,
        linkopts = select({
            "//fuzz:libfuzzer": ["-fsanitize=fuzzer"],
            "//conditions:default": [],
        }),
        deps = deps + select({
            "//fuzz:libfuzzer": [],
            "//conditions:default": ["//fuzz:replay_main"],
        }),
    )
    native.cc_test(
        name = name + "_corpus_test",
        size = "small",
        srcs = srcs,
        args = ["fuzz/corpus/" + corpus],
        data = native.glob(["corpus/" + corpus + "/*"]),
        deps = deps + ["//fuzz:replay_main"],
    )
