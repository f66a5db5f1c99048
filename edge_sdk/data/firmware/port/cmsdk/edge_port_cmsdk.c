/* edge_port_cmsdk.c: Arm MPS2/MPS3 boards (and QEMU's models of them).
 * CMSDK APB UART for the link; the DWT cycle counter for timing where it counts (a real
 * board), else SysTick, reported as an emulator's where the counter is there but stuck (QEMU);
 * semihosting to end the emulator.
 * Board values come from edge_board.h, generated from boards/<board>.yaml. */
#include <stdint.h>

#include "edge_board.h"
#include "edge_cmsdk_uart.h"
#include "edge_dwt.h"
#include "edge_port.h"
#include "edge_systick.h"

void SysTick_Handler(void) { edge_systick_wraps++; }

static void write_bytes(const uint8_t *data, size_t n) {
  for (size_t i = 0; i < n; ++i) edge_cmsdk_uart_put(data[i]);
}

/* The timeout runs on SysTick, which free-runs from edge_port_init on (RUN restarts it; no read
   overlaps a RUN). Under QEMU -icount it counts virtual time, so the wait is in instructions. */
static int read_byte(uint32_t timeout_ms) {
  uint64_t start = edge_systick_ticks();
  uint64_t limit = (uint64_t)timeout_ms * (EDGE_CPU_HZ / 1000u);
  for (;;) {
    int byte = edge_cmsdk_uart_poll();
    if (byte >= 0) return byte;
    if (timeout_ms != 0u && edge_systick_ticks() - start > limit) return EDGE_READ_TIMEOUT;
  }
}

static edge_port_t port = {read_byte, write_bytes, edge_systick_restart, edge_systick_ticks,
                           EDGE_CPU_HZ, EDGE_TIMER_SYSTICK};

const edge_port_t *edge_port_init(void) {
  edge_cmsdk_uart_init(EDGE_UART_BAUDDIV);
  edge_systick_restart();
  switch (edge_dwt_probe()) {
    case EDGE_DWT_COUNTS:
      port.timer_start = edge_dwt_start;
      port.timer_ticks = edge_dwt_ticks;
      port.timer_kind = EDGE_TIMER_CYCLES;
      break;
    case EDGE_DWT_STUCK:
      port.timer_kind = EDGE_TIMER_SYSTICK_EMULATED;
      break;
    default:
      break;
  }
  return &port;
}

void edge_port_exit(int code) {
#if EDGE_SEMIHOSTING
  /* SYS_EXIT_EXTENDED: {ADP_Stopped_ApplicationExit, code} */
  volatile uint32_t block[2] = {0x20026u, (uint32_t)code};
  register uint32_t r0 __asm__("r0") = 0x20u;
  register volatile uint32_t *r1 __asm__("r1") = block;
  __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
#else
  (void)code;
#endif
  for (;;) {
  }
}
