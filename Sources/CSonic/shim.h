// libsonic (Debian: libsonic-dev): speech speed change without a pitch change.
#include <sonic.h>
