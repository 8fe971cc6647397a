// Debian's libsndfile1-dev (libsndfile 1.2): FLAC, Ogg Vorbis/Opus and MP3 decoding for reference audio.
#include <sndfile.h>
