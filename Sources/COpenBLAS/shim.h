// Debian's libopenblas-dev: cblas (sgemm for every GEMM; see GEMMThreading).
#include <cblas.h>
