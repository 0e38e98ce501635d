"""aisle_fuzz_test: a libFuzzer target that is also a regression test.

In the ordinary build (gcc, plainly and under ASan+UBSan) the target links
tests/fuzz:driver and runs every file of its corpus once. With
--config=fuzz (clang, see deploy/run.sh fuzz) libFuzzer supplies main and
mutates, starting from the same corpus. The corpus lives beside the test,
in corpus/NAME/; a crash found by fuzzing is fixed and its input added
there, so it runs in every CI run after."""

def aisle_fuzz_test(name, srcs, deps, size = "small", **kwargs):
    corpus = "corpus/" + name
    native.cc_test(
        name = name,
        size = size,
        srcs = srcs,
        # Tests run from the runfiles root, where the package path leads to
        # the corpus files listed as data.
        args = [native.package_name() + "/" + corpus],
        data = native.glob([corpus + "/**"]),
        tags = ["fuzz"],
        deps = deps + select({
            "//tests/fuzz:libfuzzer": [],
            "//conditions:default": ["//tests/fuzz:driver"],
        }),
        **kwargs
    )
