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
 * 16 instructions per 16 k (128 MACs); the last partial chunk is loaded under VCTP. One chunk:
 * q0, q1 hold sixteen values of each pixel; four weight rows, eight dot products. */
#define EDGE_MVE_GEMM_2X4_CHUNK \
      "vldrb.8 q2, [%[w]], #16\n\t" \
      "vmladava.s8 r0, q0, q2\n\t" \
      "vmladava.s8 r8, q1, q2\n\t" \
      "vldrb.8 q2, [%[w]], #16\n\t" \
      "vmladava.s8 r2, q0, q2\n\t" \
      "vmladava.s8 r10, q1, q2\n\t" \
      "vldrb.8 q2, [%[w]], #16\n\t" \
      "vmladava.s8 r4, q0, q2\n\t" \
      "vmladava.s8 r12, q1, q2\n\t" \
      "vldrb.8 q2, [%[w]], #16\n\t" \
      "vmladava.s8 r6, q0, q2\n\t" \
      "vmladava.s8 lr, q1, q2\n\t"
#define EDGE_MVE_GEMM_2X4_LOOP \
      "subs %[k], %[k], #16\n\t" \
      "blt 2f\n" \
      "1:\n\t" \
      "vldrb.8 q0, [%[x0]], #16\n\t" \
      "vldrb.8 q1, [%[x1]], #16\n\t" \
      EDGE_MVE_GEMM_2X4_CHUNK \
      "subs %[k], %[k], #16\n\t" \
      "bge 1b\n" \
      "2:\n\t" \
      "adds %[k], %[k], #16\n\t" \
      "beq 3f\n\t" \
      "vctp.8 %[k]\n\t" \
      "vpstt\n\t" \
      "vldrbt.8 q0, [%[x0]]\n\t" \
      "vldrbt.8 q1, [%[x1]]\n\t" \
      EDGE_MVE_GEMM_2X4_CHUNK "\n" \
      "3:\n\t" 
/* Register budget: the eight accumulators are pinned to even registers, the four pointers and
 * the count take GCC's registers; the result array (and the bias) are only touched once, so
 * their pointers come as memory operands and are loaded into registers that are free then (the
 * count's, once the loop is done; r8, before the accumulators are set). That leaves GCC room
 * for the values it keeps live around the call (a sixth register operand did not always fit). */
#define EDGE_MVE_GEMM_2X4(PROLOGUE, ...)                                                \
  __asm__ volatile(PROLOGUE EDGE_MVE_GEMM_2X4_LOOP                                      \
                   "ldr %[k], %[accp]\n\t"                                               \
                   "stm %[k], {r0, r2, r4, r6, r8, r10, r12, lr}\n\t"                     \
                   : [x0] "+&r"(x0), [x1] "+&r"(x1), [w] "+&r"(w), [k] "+&r"(k)          \
                   : [accp] "m"(acc), __VA_ARGS__                                         \
                   : "r0", "r2", "r4", "r6", "r8", "r10", "r12", "lr", "d0", "d1", "d2", "d3", \
                     "d4", "d5", "cc", "memory")

#if !EDGE_MVE_ASM
static inline void edge_mve_gemm_2x4_c(const int8_t *x0, const int8_t *x1, const int8_t *w,
                                       int32_t k, int32_t *acc) {
  for (int32_t c = 0; c < k; c += 16, w += 64) {
    int32_t n = k - c < 16 ? k - c : 16;
    for (int32_t r = 0; r < 4; ++r) {
      acc[r] += edge_mve_dot16(x0 + c, w + 16 * r, n);
      acc[4 + r] += edge_mve_dot16(x1 + c, w + 16 * r, n);
    }
  }
}
#endif

/* ... starting from bias[0..3] (the same four channels for both pixels). */
static inline void edge_mve_gemm_2x4(const int8_t *x0, const int8_t *x1, const int8_t *w,
                                     int32_t k, const int32_t *bias, int32_t *acc) {
#if EDGE_MVE_ASM
  EDGE_MVE_GEMM_2X4("ldr r8, %[bp]\n\t"
                    "ldm r8, {r0, r2, r4, r6}\n\t"
                    "mov r8, r0\n\t"
                    "mov r10, r2\n\t"
                    "mov r12, r4\n\t"
                    "mov lr, r6\n\t",
                    [bp] "m"(bias));
#else
  for (int32_t r = 0; r < 4; ++r) acc[r] = acc[4 + r] = bias[r];
  edge_mve_gemm_2x4_c(x0, x1, w, k, acc);
#endif
}

/* ... adding to acc[0..7] (convolutions tap by tap). */
static inline void edge_mve_gemm_2x4_acc(const int8_t *x0, const int8_t *x1, const int8_t *w,
                                         int32_t k, int32_t *acc) {
#if EDGE_MVE_ASM
  EDGE_MVE_GEMM_2X4("ldr r8, %[accp]\n\t"
                    "ldm r8, {r0, r2, r4, r6, r8, r10, r12, lr}\n\t", [unused] "i"(0));
#else
  edge_mve_gemm_2x4_c(x0, x1, w, k, acc);
#endif
}

/* One chunk of 16 values in q0 against four weight rows: four dot products. */
#define EDGE_MVE_GEMM_1X4_CHUNK \
      "vldrb.8 q1, [%[w]], #16\n\t" \
      "vldrb.8 q2, [%[w]], #16\n\t" \
      "vmladava.s8 r0, q0, q1\n\t" \
      "vmladava.s8 r2, q0, q2\n\t" \
      "vldrb.8 q1, [%[w]], #16\n\t" \
      "vldrb.8 q2, [%[w]], #16\n\t" \
      "vmladava.s8 r4, q0, q1\n\t" \
      "vmladava.s8 r6, q0, q2\n\t"

/* One pixel (or input row) x four output channels over k int8 values, starting from
 * bias[0..3]: acc[0..3]. */
static inline void edge_mve_gemm_1x4(const int8_t *x, const int8_t *w, int32_t k,
                                     const int32_t *bias, int32_t *acc) {
#if EDGE_MVE_ASM
  __asm__ volatile(
      "ldm %[b], {r0, r2, r4, r6}\n\t"
      "subs %[k], %[k], #16\n\t"
      "blt 2f\n"
      "1:\n\t"
      "vldrb.8 q0, [%[x]], #16\n\t"
      EDGE_MVE_GEMM_1X4_CHUNK
      "subs %[k], %[k], #16\n\t"
      "bge 1b\n"
      "2:\n\t"
      "adds %[k], %[k], #16\n\t"
      "beq 3f\n\t"
      "vctp.8 %[k]\n\t"
      "vpst\n\t"
      "vldrbt.8 q0, [%[x]]\n\t"
      EDGE_MVE_GEMM_1X4_CHUNK "\n"
      "3:\n\t"
      "stm %[acc], {r0, r2, r4, r6}\n\t"
      : [x] "+&r"(x), [w] "+&r"(w), [k] "+&r"(k)
      : [acc] "r"(acc), [b] "r"(bias)
      : "r0", "r2", "r4", "r6", "d0", "d1", "d2", "d3", "d4", "d5", "cc", "memory");
#else
  for (int32_t r = 0; r < 4; ++r) acc[r] = bias[r];
  for (int32_t c = 0; c < k; c += 16, w += 64) {
    int32_t n = k - c < 16 ? k - c : 16;
    for (int32_t r = 0; r < 4; ++r) acc[r] += edge_mve_dot16(x + c, w + 16 * r, n);
  }
#endif
}

/* Depthwise taps for one group of `lanes` channels (16, 8 or 4: one int32 vector per four) of
 * one output pixel: acc[c] = bias[c] + sum over kh x kw taps of x[tap][c] * w[tap][c]. x points
 * at the first tap; taps are col_stride bytes apart in a row and rows row_stride apart; w is
 * [tap][lanes] int8. Per tap and four channels: a widening load of each, VMUL, VADD (MVE has no
 * integer vector multiply-accumulate). */
#define EDGE_MVE_DW_LOAD(q, off) "vldrw.32 " q ", [%[b], #" off "]\n\t"
#define EDGE_MVE_DW_STORE(q, off) "vstrw.32 " q ", [%[acc], #" off "]\n\t"
#define EDGE_MVE_DW_STEP(q, off)                                                        \
  "vldrb.s32 q4, [%[p], #" off "]\n\t"                                                   \
  "vldrb.s32 q5, [%[w]], #4\n\t"                                                         \
  "vmul.i32 q4, q4, q5\n\t"                                                              \
  "vadd.i32 " q ", " q ", q4\n\t"
#define EDGE_MVE_DW_LOOP(LOADS, STEPS, STORES)                                          \
  __asm__ volatile(LOADS                                                                 \
                   "1:\n\t"                                                              \
                   "mov %[p], %[x]\n\t"                                                  \
                   "mov %[kx], %[kw]\n"                                                  \
                   "2:\n\t" STEPS                                                        \
                   "add %[p], %[p], %[cs]\n\t"                                           \
                   "subs %[kx], %[kx], #1\n\t"                                           \
                   "bne 2b\n\t"                                                          \
                   "add %[x], %[x], %[rs]\n\t"                                           \
                   "subs %[kh], %[kh], #1\n\t"                                           \
                   "bne 1b\n\t" STORES                                                   \
                   : [x] "+&r"(x), [w] "+&l"(w), [kh] "+&r"(kh), [p] "=&l"(p), [kx] "=&r"(kx) \
                   : [acc] "r"(acc), [b] "r"(bias), [rs] "r"(row_stride),               \
                     [cs] "r"(col_stride), [kw] "r"(kw)                                   \
                   : "d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7", "d8", "d9", "d10",     \
                     "d11", "cc", "memory")
static inline void edge_mve_dw(const int8_t *x, int32_t row_stride, int32_t col_stride,
                               int32_t kh, int32_t kw, const int8_t *w, const int32_t *bias,
                               int32_t *acc, int32_t lanes) {
#if EDGE_MVE_ASM
  const int8_t *p;
  int32_t kx;
  if (lanes == 16) {
    EDGE_MVE_DW_LOOP(EDGE_MVE_DW_LOAD("q0", "0") EDGE_MVE_DW_LOAD("q1", "16")
                     EDGE_MVE_DW_LOAD("q2", "32") EDGE_MVE_DW_LOAD("q3", "48"),
                     EDGE_MVE_DW_STEP("q0", "0") EDGE_MVE_DW_STEP("q1", "4")
                     EDGE_MVE_DW_STEP("q2", "8") EDGE_MVE_DW_STEP("q3", "12"),
                     EDGE_MVE_DW_STORE("q0", "0") EDGE_MVE_DW_STORE("q1", "16")
                     EDGE_MVE_DW_STORE("q2", "32") EDGE_MVE_DW_STORE("q3", "48"));
  } else if (lanes == 8) {
    EDGE_MVE_DW_LOOP(EDGE_MVE_DW_LOAD("q0", "0") EDGE_MVE_DW_LOAD("q1", "16"),
                     EDGE_MVE_DW_STEP("q0", "0") EDGE_MVE_DW_STEP("q1", "4"),
                     EDGE_MVE_DW_STORE("q0", "0") EDGE_MVE_DW_STORE("q1", "16"));
  } else {
    EDGE_MVE_DW_LOOP(EDGE_MVE_DW_LOAD("q0", "0"), EDGE_MVE_DW_STEP("q0", "0"),
                     EDGE_MVE_DW_STORE("q0", "0"));
  }
#else
  for (int32_t c = 0; c < lanes; ++c) acc[c] = bias[c];
  for (int32_t ky = 0; ky < kh; ++ky, x += row_stride) {
    for (int32_t kx = 0; kx < kw; ++kx, w += lanes) {
      for (int32_t c = 0; c < lanes; ++c) {
        acc[c] += (int32_t)x[kx * col_stride + c] * (int32_t)w[c];
      }
    }
  }
#endif
}

/* One depthwise tap for a group of `lanes` channels: acc[c] += x[c] * w[c] (border pixels, tap by
 * tap; a padding tap passes a row of zero points). Six instructions per four channels. */
#define EDGE_MVE_DW_LANE(off, aoff)                                                     \
  "vldrb.s32 q0, [%[x], #" off "]\n\t"                                                   \
  "vldrb.s32 q1, [%[w], #" off "]\n\t"                                                   \
  "vmul.i32 q0, q0, q1\n\t"                                                              \
  "vldrw.32 q1, [%[acc], #" aoff "]\n\t"                                                 \
  "vadd.i32 q1, q1, q0\n\t"                                                              \
  "vstrw.32 q1, [%[acc], #" aoff "]\n\t"
#define EDGE_MVE_DW_TAP(LANES)                                                          \
  __asm__ volatile(LANES : : [x] "l"(x), [w] "l"(w), [acc] "r"(acc)                      \
                   : "d0", "d1", "d2", "d3", "memory")
static inline void edge_mve_dw_tap(const int8_t *x, const int8_t *w, int32_t *acc,
                                   int32_t lanes) {
#if EDGE_MVE_ASM
  if (lanes == 16) {
    EDGE_MVE_DW_TAP(EDGE_MVE_DW_LANE("0", "0") EDGE_MVE_DW_LANE("4", "16")
                    EDGE_MVE_DW_LANE("8", "32") EDGE_MVE_DW_LANE("12", "48"));
  } else if (lanes == 8) {
    EDGE_MVE_DW_TAP(EDGE_MVE_DW_LANE("0", "0") EDGE_MVE_DW_LANE("4", "16"));
  } else {
    EDGE_MVE_DW_TAP(EDGE_MVE_DW_LANE("0", "0"));
  }
#else
  for (int32_t c = 0; c < lanes; ++c) acc[c] += (int32_t)x[c] * (int32_t)w[c];
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

/* ---- end of MVE micro-kernels ---- */
