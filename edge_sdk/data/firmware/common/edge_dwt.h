/* edge_dwt.h: the DWT cycle counter of Armv7-M/v8-M cores, probed before it is trusted.
 *
 * A port times inferences with it where it counts; where the core says it has one (DWT present,
 * NOCYCCNT clear, the Cortex-M7 lock opened) but it never moves, the core is an emulator's
 * (QEMU implements no DWT): the port then times with SysTick and says so, because SysTick under
 * QEMU -icount counts instructions, not cycles. Registers are architectural: no device header.
 *
 * Include this header in one source file only. */
#ifndef EDGE_DWT_H
#define EDGE_DWT_H

#include <stdint.h>

#define EDGE_DEMCR (*(volatile uint32_t *)0xE000EDFCu)
#define EDGE_DEMCR_TRCENA (1u << 24)
#define EDGE_DWT_CTRL (*(volatile uint32_t *)0xE0001000u)
#define EDGE_DWT_CTRL_NOCYCCNT (1u << 25)
#define EDGE_DWT_CTRL_CYCCNTENA 1u
#define EDGE_DWT_CYCCNT (*(volatile uint32_t *)0xE0001004u)
#define EDGE_DWT_LAR (*(volatile uint32_t *)0xE0001FB0u) /* Cortex-M7: writes need the key */

enum edge_dwt_state {
  EDGE_DWT_ABSENT = 0,  /* Armv6-M, or a core built without the counter */
  EDGE_DWT_COUNTS = 1,  /* a real core's cycle counter */
  EDGE_DWT_STUCK = 2,   /* present but never moves: an emulator */
};

static inline int edge_dwt_probe(void) {
#if defined(__ARM_ARCH_6M__) || defined(EDGE_NO_DWT)
  return EDGE_DWT_ABSENT;
#else
  EDGE_DEMCR |= EDGE_DEMCR_TRCENA;
  EDGE_DWT_LAR = 0xC5ACCE55u;
  if (EDGE_DWT_CTRL & EDGE_DWT_CTRL_NOCYCCNT) return EDGE_DWT_ABSENT;
  EDGE_DWT_CYCCNT = 0u;
  EDGE_DWT_CTRL |= EDGE_DWT_CTRL_CYCCNTENA;
  for (volatile int i = 0; i < 16; ++i) {
  }
  return EDGE_DWT_CYCCNT != 0u ? EDGE_DWT_COUNTS : EDGE_DWT_STUCK;
#endif
}

static inline void edge_dwt_start(void) { EDGE_DWT_CYCCNT = 0u; }
/* 32 bits: 19 s at 216 MHz, far beyond one layer or inference of a model that fits. */
static inline uint64_t edge_dwt_ticks(void) { return EDGE_DWT_CYCCNT; }

#endif
