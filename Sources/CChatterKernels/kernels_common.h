// Shared by the kernels (private to CChatterKernels): the ISA a call may use, IEEE binary16
// values and q8_0 blocks.
#ifndef CHATTER_KERNELS_COMMON_H
#define CHATTER_KERNELS_COMMON_H

#include "chatter_kernels.h"

#include <stdint.h>
#include <string.h>

// The ISA a call runs at: the one requested (tests lower it to reach every path), but never above
// what this CPU has.
static inline chatter_isa usable_isa(chatter_isa requested) {
    chatter_isa best = chatter_kernels_isa();
    return requested > best ? best : requested;
}

// q8_0: blocks of 32 weights stored as an f16 scale and 32 int8 values (34 bytes; weights-format.md).
#define QK 32
#define QBYTES 34

// IEEE binary16 → binary32, exact (every half is a float): the portable kernels' widening and the
// reference the F16C paths are tested against.
static inline float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exponent = (h >> 10) & 0x1F, mantissa = h & 0x3FF;
    uint32_t bits;
    if (exponent == 0x1F) {
        bits = sign | 0x7F800000 | (mantissa << 13);
    } else if (exponent != 0) {
        bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
    } else if (mantissa == 0) {
        bits = sign;
    } else {  // subnormal half: renormalise
        exponent = 113;
        while (!(mantissa & 0x400)) { mantissa <<= 1; exponent--; }
        bits = sign | (exponent << 23) | ((mantissa & 0x3FF) << 13);
    }
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

// A q8_0 block's scale: blocks are 34 bytes, so scales are only 2-byte aligned.
static inline __attribute__((always_inline)) uint16_t load_u16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

#endif
