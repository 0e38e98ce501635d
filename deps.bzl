"""Link options shared by the targets that use Debian's system libraries."""

# FAISS through its C API (libfaiss_c.a is built by deploy/setup.sh), in the
# order the static libraries need: C API, FAISS, its BLAS, OpenMP, C++.
FAISS_LINKOPTS = [
    "-L/usr/local/lib",
    "-lfaiss_c",
    "-lfaiss",
    "-lopenblas",
    "-fopenmp",
    "-lstdc++",
    "-lm",
    "-lpthread",
]
