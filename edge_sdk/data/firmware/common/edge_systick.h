/* edge_systick.h: SysTick as a free-running 64-bit tick counter, for the ports of cores that
 * have one (every Armv6-M, v7-M and v8-M core). Its registers are architectural, so no device
 * header is needed.
 *
 * The 24-bit counter wraps every 2^24 ticks; the port's SysTick_Handler counts the wraps:
 *
 *     void SysTick_Handler(void) { edge_systick_wraps++; }
 *
 * Include this header in one source file only: it holds the wrap counter. */
#ifndef EDGE_SYSTICK_H
#define EDGE_SYSTICK_H

#include <stdint.h>

#define EDGE_SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define EDGE_SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define EDGE_SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define EDGE_SYST_RELOAD 0x00FFFFFFu

static volatile uint32_t edge_systick_wraps;

/* Count from zero again: enabled, interrupt on wrap, processor clock. */
static inline void edge_systick_restart(void) {
  EDGE_SYST_CSR = 0u;
  edge_systick_wraps = 0u;
  EDGE_SYST_RVR = EDGE_SYST_RELOAD;
  EDGE_SYST_CVR = 0u;
  EDGE_SYST_CSR = 0x7u;
}

/* Ticks since the last restart. The counter counts down; a wrap between reading the wrap count
 * and the counter is caught by reading the wrap count again. */
static inline uint64_t edge_systick_ticks(void) {
  uint32_t wraps, value;
  do {
    wraps = edge_systick_wraps;
    value = EDGE_SYST_CVR;
  } while (wraps != edge_systick_wraps);
  return (uint64_t)wraps * (EDGE_SYST_RELOAD + 1u) + (EDGE_SYST_RELOAD - value);
}

#endif /* EDGE_SYSTICK_H */
