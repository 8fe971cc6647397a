// Debian's libsoxr-dev (libsoxr 0.1.3): the resampler librosa's default `soxr_hq` calls.
#include <soxr.h>
