// FFmpeg's libavcodec (Debian: libavcodec-dev): its native AAC and FLAC encoders. The helpers below
// wrap what Swift cannot import (function-like macros such as AVERROR) and the channel-layout calls.
#include <errno.h>
#include <libavcodec/avcodec.h>
#include <libavutil/channel_layout.h>
#include <libavutil/error.h>
#include <libavutil/frame.h>
#include <libavutil/mem.h>

static inline int chatter_averror_eagain(void) { return AVERROR(EAGAIN); }
static inline int chatter_averror_eof(void) { return AVERROR_EOF; }
static inline void chatter_codec_set_mono(AVCodecContext *context) { av_channel_layout_default(&context->ch_layout, 1); }
static inline int chatter_frame_set_mono(AVFrame *frame) { av_channel_layout_default(&frame->ch_layout, 1); return 0; }
