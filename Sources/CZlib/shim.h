// Debian's zlib1g-dev: raw inflate of the deflated members of a wheel (the Perth checkpoint).
#include <zlib.h>
