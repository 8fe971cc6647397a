// Debian's libopenblas-dev (cblas) and liblapacke-dev (lapacke).
#include <cblas.h>
#include <lapacke.h>
