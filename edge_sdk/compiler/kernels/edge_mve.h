/* ---- Armv8.1-M MVE (Helium) micro-kernels (edge-sdk) ----
 * Innermost pieces for Cortex-M55-class cores, called by loop nests TVM generated; layouts are
 * prepared at compile time (see edge_sdk/compiler/kernels/mve.py):
 *   - GEMM weights: [K/16][4 output channels][16] int8, K padded with zeros; activations are
 *     read in place as int8 rows and the last partial chunk is loaded under a VCTP predicate
 *     (inactive lanes read as zero), so nothing past a row is touched.
 *   - Depthwise weights: [tap][channels] int8.
 * VMLADAVA's accumulator must be an even register, which GCC's inline asm cannot ask for; the
 * loops therefore pin the accumulators to r0, r2, ... (declared clobbered) and take their
 * operands in the odd registers GCC has left. Widening loads and narrowing stores (VLDRB.S32,
 * VSTRB.32) need a low base register: the "l" constraint. GCC 12's own code from the arm_mve.h intrinsics
 * spills and shuffles predicates (measured), hence assembly. Off-target the same arithmetic is
 * plain C, so the kernels are checked on a host too.
 */
#if defined(__arm__) && !(defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1))
#error "this model was compiled for a Cortex-M core with MVE (Helium); compile it with -mcpu=cortex-m55 (or recompile the model for your board)"
#endif
/* Unoptimized builds (-O0) take the C twins: GCC 12 cannot place these asm operands at -O0 once
 * vector registers are clobbered too ("impossible constraints"), though it can at -Og and up. */
#if defined(__arm__) && defined(__GNUC__) && defined(__OPTIMIZE__)
#define EDGE_MVE_ASM 1
#else
#define EDGE_MVE_ASM 0
#endif

#if !EDGE_MVE_ASM
/* sum(x[i] * w[i]) over the first n of 16 lanes. */
static inline int32_t edge_mve_dot16(const int8_t *x, const int8_t *w, int32_t n) {
  int32_t s = 0;
  for (int32_t i = 0; i < n; ++i) s += (int32_t)x[i] * (int32_t)w[i];
  return s;
}
#endif

/* Two pixels x four output channels over k int8 values: acc = {p0c0..p0c3, p1c0..p1c3}.
 * 16 instructions per 16 k (128 MACs). */
static inline void edge_mve_gemm_2x4(const int8_t *x0, const int8_t *x1, const int8_t *w,
                                     int32_t k, int32_t *acc) {
#if EDGE_MVE_ASM
  __asm__ volatile(
      "ldm %[acc], {r0, r2, r4, r6, r8, r10, r12, lr}\n\t"
      "subs %[k], %[k], #16\n\t"
      "blt 2f\n"
      "1:\n\t"
      "vldrb.8 q0, [%[x0]], #16\n\t"
      "vldrb.8 q1, [%[x1]], #16\n\t"
      "vldrb.8 q2, [%[w]], #16\n\t"
      "vmladava.s8 r0, q0, q2\n\t"
      "vmladava.s8 r8, q1, q2\n\t"
      "vldrb.8 q2, [%[w]], #16\n\t"
      "vmladava.s8 r2, q0, q2\n\t"
      "vmladava.s8 r10, q1, q2\n\t"
      "vldrb.8 q2, [%[w]], #16\n\t"
      "vmladava.s8 r4, q0, q2\n\t"
      "vmladava.s8 r12, q1, q2\n\t"
      "vldrb.8 q2, [%[w]], #16\n\t"
      "vmladava.s8 r6, q0, q2\n\t"
      "vmladava.s8 lr, q1, q2\n\t"
      "subs %[k], %[k], #16\n\t"
      "bge 1b\n"
      "2:\n\t"
      "adds %[k], %[k], #16\n\t"
      "beq 3f\n\t"
      "vctp.8 %[k]\n\t"
      "vpstt\n\t"
      "vldrbt.8 q0, [%[x0]]\n\t"
      "vldrbt.8 q1, [%[x1]]\n\t"
      "vldrb.8 q2, [%[w]], #16\n\t"
      "vmladava.s8 r0, q0, q2\n\t"
      "vmladava.s8 r8, q1, q2\n\t"
      "vldrb.8 q2, [%[w]], #16\n\t"
      "vmladava.s8 r2, q0, q2\n\t"
      "vmladava.s8 r10, q1, q2\n\t"
      "vldrb.8 q2, [%[w]], #16\n\t"
      "vmladava.s8 r4, q0, q2\n\t"
      "vmladava.s8 r12, q1, q2\n\t"
      "vldrb.8 q2, [%[w]], #16\n\t"
      "vmladava.s8 r6, q0, q2\n\t"
      "vmladava.s8 lr, q1, q2\n"
      "3:\n\t"
      "stm %[acc], {r0, r2, r4, r6, r8, r10, r12, lr}\n\t"
      : [x0] "+&r"(x0), [x1] "+&r"(x1), [w] "+&r"(w), [k] "+&r"(k)
      : [acc] "r"(acc)
      : "r0", "r2", "r4", "r6", "r8", "r10", "r12", "lr", "d0", "d1", "d2", "d3", "d4", "d5",
        "cc", "memory");
#else
  for (int32_t c = 0; c < k; c += 16, w += 64) {
    int32_t n = k - c < 16 ? k - c : 16;
    for (int32_t r = 0; r < 4; ++r) {
      acc[r] += edge_mve_dot16(x0 + c, w + 16 * r, n);
      acc[4 + r] += edge_mve_dot16(x1 + c, w + 16 * r, n);
    }
  }
#endif
}

/* One pixel (or input row) x four output channels over k int8 values: acc[0..3]. */
static inline void edge_mve_gemm_1x4(const int8_t *x, const int8_t *w, int32_t k, int32_t *acc) {
#if EDGE_MVE_ASM
  __asm__ volatile(
      "ldm %[acc], {r0, r2, r4, r6}\n\t"
      "subs %[k], %[k], #16\n\t"
      "blt 2f\n"
      "1:\n\t"
      "vldrb.8 q0, [%[x]], #16\n\t"
      "vldrb.8 q1, [%[w]], #16\n\t"
      "vldrb.8 q2, [%[w]], #16\n\t"
      "vmladava.s8 r0, q0, q1\n\t"
      "vmladava.s8 r2, q0, q2\n\t"
      "vldrb.8 q1, [%[w]], #16\n\t"
      "vldrb.8 q2, [%[w]], #16\n\t"
      "vmladava.s8 r4, q0, q1\n\t"
      "vmladava.s8 r6, q0, q2\n\t"
      "subs %[k], %[k], #16\n\t"
      "bge 1b\n"
      "2:\n\t"
      "adds %[k], %[k], #16\n\t"
      "beq 3f\n\t"
      "vctp.8 %[k]\n\t"
      "vpst\n\t"
      "vldrbt.8 q0, [%[x]]\n\t"
      "vldrb.8 q1, [%[w]], #16\n\t"
      "vldrb.8 q2, [%[w]], #16\n\t"
      "vmladava.s8 r0, q0, q1\n\t"
      "vmladava.s8 r2, q0, q2\n\t"
      "vldrb.8 q1, [%[w]], #16\n\t"
      "vldrb.8 q2, [%[w]], #16\n\t"
      "vmladava.s8 r4, q0, q1\n\t"
      "vmladava.s8 r6, q0, q2\n"
      "3:\n\t"
      "stm %[acc], {r0, r2, r4, r6}\n\t"
      : [x] "+&r"(x), [w] "+&r"(w), [k] "+&r"(k)
      : [acc] "r"(acc)
      : "r0", "r2", "r4", "r6", "d0", "d1", "d2", "d3", "d4", "d5", "cc", "memory");
#else
  for (int32_t c = 0; c < k; c += 16, w += 64) {
    int32_t n = k - c < 16 ? k - c : 16;
    for (int32_t r = 0; r < 4; ++r) acc[r] += edge_mve_dot16(x + c, w + 16 * r, n);
  }
#endif
}

/* Depthwise taps for 16 channels of one output pixel: acc[c] = bias[c] + sum over kh x kw taps
 * of x[tap][c] * w[tap][c]. x points at the first tap; taps are col_stride bytes apart in a row
 * and rows row_stride apart; w is [tap][16] int8. 19 instructions per tap (16 MACs). */
static inline void edge_mve_dw16(const int8_t *x, int32_t row_stride, int32_t col_stride,
                                 int32_t kh, int32_t kw, const int8_t *w, const int32_t *bias,
                                 int32_t *acc) {
#if EDGE_MVE_ASM
  const int8_t *p;
  int32_t kx;
  __asm__ volatile(
      "vldrw.32 q0, [%[b]]\n\t"
      "vldrw.32 q1, [%[b], #16]\n\t"
      "vldrw.32 q2, [%[b], #32]\n\t"
      "vldrw.32 q3, [%[b], #48]\n"
      "1:\n\t"
      "mov %[p], %[x]\n\t"
      "mov %[kx], %[kw]\n"
      "2:\n\t"
      "vldrb.s32 q4, [%[p]]\n\t"
      "vldrb.s32 q5, [%[w]], #4\n\t"
      "vmul.i32 q4, q4, q5\n\t"
      "vadd.i32 q0, q0, q4\n\t"
      "vldrb.s32 q4, [%[p], #4]\n\t"
      "vldrb.s32 q5, [%[w]], #4\n\t"
      "vmul.i32 q4, q4, q5\n\t"
      "vadd.i32 q1, q1, q4\n\t"
      "vldrb.s32 q4, [%[p], #8]\n\t"
      "vldrb.s32 q5, [%[w]], #4\n\t"
      "vmul.i32 q4, q4, q5\n\t"
      "vadd.i32 q2, q2, q4\n\t"
      "vldrb.s32 q4, [%[p], #12]\n\t"
      "vldrb.s32 q5, [%[w]], #4\n\t"
      "vmul.i32 q4, q4, q5\n\t"
      "vadd.i32 q3, q3, q4\n\t"
      "add %[p], %[p], %[cs]\n\t"
      "subs %[kx], %[kx], #1\n\t"
      "bne 2b\n\t"
      "add %[x], %[x], %[rs]\n\t"
      "subs %[kh], %[kh], #1\n\t"
      "bne 1b\n\t"
      "vstrw.32 q0, [%[acc]]\n\t"
      "vstrw.32 q1, [%[acc], #16]\n\t"
      "vstrw.32 q2, [%[acc], #32]\n\t"
      "vstrw.32 q3, [%[acc], #48]\n\t"
      : [x] "+&r"(x), [w] "+&l"(w), [kh] "+&r"(kh), [p] "=&l"(p), [kx] "=&r"(kx)
      : [acc] "r"(acc), [b] "r"(bias), [rs] "r"(row_stride), [cs] "r"(col_stride),
        [kw] "r"(kw)
      : "d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7", "d8", "d9", "d10", "d11", "cc",
        "memory");
#else
  for (int32_t c = 0; c < 16; ++c) acc[c] = bias[c];
  for (int32_t ky = 0; ky < kh; ++ky, x += row_stride) {
    for (int32_t kx = 0; kx < kw; ++kx, w += 16) {
      for (int32_t c = 0; c < 16; ++c) acc[c] += (int32_t)x[kx * col_stride + c] * (int32_t)w[c];
    }
  }
#endif
}

/* One depthwise tap for 16 channels: acc[c] += x[c] * w[c] (border pixels, tap by tap; a
 * padding tap passes a row of zero points). 24 instructions per 16 MACs. */
static inline void edge_mve_dw16_tap(const int8_t *x, const int8_t *w, int32_t *acc) {
#if EDGE_MVE_ASM
#define EDGE_MVE_DW_LANE(off, aoff)                 \
  "vldrb.s32 q0, [%[x], #" off "]\n\t"             \
  "vldrb.s32 q1, [%[w], #" off "]\n\t"             \
  "vmul.i32 q0, q0, q1\n\t"                        \
  "vldrw.32 q1, [%[acc], #" aoff "]\n\t"           \
  "vadd.i32 q1, q1, q0\n\t"                        \
  "vstrw.32 q1, [%[acc], #" aoff "]\n\t"
  __asm__ volatile(EDGE_MVE_DW_LANE("0", "0") EDGE_MVE_DW_LANE("4", "16")
                   EDGE_MVE_DW_LANE("8", "32") EDGE_MVE_DW_LANE("12", "48")
                   :
                   : [x] "l"(x), [w] "l"(w), [acc] "r"(acc)
                   : "d0", "d1", "d2", "d3", "memory");
#undef EDGE_MVE_DW_LANE
#else
  for (int32_t c = 0; c < 16; ++c) acc[c] += (int32_t)x[c] * (int32_t)w[c];
#endif
}

/* TFLite's MultiplyByQuantizedMultiplier (double rounding) on four lanes, for right shifts >= 1
 * (checked at compile time), then the output offset, the activation clamp and an int8 store of
 * the first n (1..4) lanes. VQRDMULH is SaturatingRoundingDoublingHighMul exactly; a rounding
 * VRSHL by -e rounds half up, and adding (x >> 31) first makes it round half away from zero,
 * as RoundingDivideByPOT does. shift[] holds TFLite's (negative) shifts. */
static inline void edge_mve_requant4(const int32_t *acc, const int32_t *mult, const int32_t *shift,
                                     int32_t zp, int32_t lo, int32_t hi, int8_t *out, int32_t n) {
#if EDGE_MVE_ASM
  __asm__ volatile(
      "vldrw.32 q0, [%[acc]]\n\t"
      "vldrw.32 q1, [%[m]]\n\t"
      "vqrdmulh.s32 q0, q0, q1\n\t"
      "vshr.s32 q1, q0, #31\n\t"
      "vadd.i32 q0, q0, q1\n\t"
      "vldrw.32 q1, [%[s]]\n\t"
      "vrshl.s32 q0, q0, q1\n\t"
      "vadd.i32 q0, q0, %[zp]\n\t"
      "vdup.32 q1, %[lo]\n\t"
      "vmax.s32 q0, q0, q1\n\t"
      "vdup.32 q1, %[hi]\n\t"
      "vmin.s32 q0, q0, q1\n\t"
      "vctp.32 %[n]\n\t"
      "vpst\n\t"
      "vstrbt.32 q0, [%[out]]\n\t"
      :
      : [acc] "r"(acc), [m] "r"(mult), [s] "r"(shift), [zp] "r"(zp), [lo] "r"(lo), [hi] "r"(hi),
        [out] "l"(out), [n] "r"(n)
      : "d0", "d1", "d2", "d3", "cc", "memory");
#else
  for (int32_t i = 0; i < n; ++i) {
    int64_t ab = (int64_t)acc[i] * mult[i];
    int32_t x = (int32_t)((ab + ((int64_t)1 << 30)) >> 31); /* SRDHM, see edge_requant_dr */
    int32_t e = -shift[i];
    x = (x + (x >> 31) + (1 << (e - 1))) >> e;
    x += zp;
    out[i] = (int8_t)(x < lo ? lo : x > hi ? hi : x);
  }
#endif
}

/* Copy n bytes (im2col rows) and fill n bytes with one value (padding taps). */
static inline void edge_mve_copy(int8_t *dst, const int8_t *src, int32_t n) {
#if EDGE_MVE_ASM
  __asm__ volatile(
      "1:\n\t"
      "vctp.8 %[n]\n\t"
      "vpstt\n\t"
      "vldrbt.8 q0, [%[s]], #16\n\t"
      "vstrbt.8 q0, [%[d]], #16\n\t"
      "subs %[n], %[n], #16\n\t"
      "bgt 1b\n\t"
      : [d] "+&r"(dst), [s] "+&r"(src), [n] "+&r"(n)
      :
      : "d0", "d1", "cc", "memory");
#else
  memcpy(dst, src, (size_t)n);
#endif
}

static inline void edge_mve_fill(int8_t *dst, int32_t value, int32_t n) {
#if EDGE_MVE_ASM
  __asm__ volatile(
      "vdup.8 q0, %[v]\n"
      "1:\n\t"
      "vctp.8 %[n]\n\t"
      "vpst\n\t"
      "vstrbt.8 q0, [%[d]], #16\n\t"
      "subs %[n], %[n], #16\n\t"
      "bgt 1b\n\t"
      : [d] "+&r"(dst), [n] "+&r"(n)
      : [v] "r"(value)
      : "d0", "d1", "cc", "memory");
#else
  memset(dst, value, (size_t)n);
#endif
}
/* ---- end of MVE micro-kernels ---- */
