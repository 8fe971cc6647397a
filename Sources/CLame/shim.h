// Debian's libmp3lame-dev (LAME 3.100). It ships no pkg-config file, so the header is included by its
// full path and the module map links "mp3lame" itself.
#include <lame/lame.h>
