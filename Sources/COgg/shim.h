// Debian's libogg-dev.
#include <ogg/ogg.h>
