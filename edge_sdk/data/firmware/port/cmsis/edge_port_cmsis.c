/* edge_port_cmsis.c: the edge-sdk protocol in a CMSIS-Toolbox project.
 *
 * The board's support file (edge_board_cmsis.h) sets clocks, caches and the console UART;
 * this file adds what every Cortex-M core has: SysTick, free-running from start-up, for the
 * serial timeouts, and the DWT cycle counter for timing inferences. It touches only registers
 * that the Armv6-M/v7-M/v8-M architecture fixes, so it needs no device header.
 *
 * SysTick is ours: an application that also wants it (an RTOS tick, HAL_IncTick) must route
 * SysTick_Handler here or give the port another time base. */
#include <stdint.h>

#include "edge_board_cmsis.h"
#include "edge_dwt.h"
#include "edge_port.h"
#include "edge_systick.h"

/* From the device's CMSIS system file (system_<device>.c). */
extern uint32_t SystemCoreClock;

void SysTick_Handler(void) { edge_systick_wraps++; }

static int read_byte(uint32_t timeout_ms) {
  uint64_t start = edge_systick_ticks();
  uint64_t limit = (uint64_t)timeout_ms * (SystemCoreClock / 1000u);
  for (;;) {
    int byte = edge_board_uart_poll();
    if (byte >= 0) return byte;
    if (timeout_ms != 0u && edge_systick_ticks() - start > limit) return EDGE_READ_TIMEOUT;
  }
}

static void write_bytes(const uint8_t *data, size_t n) {
  for (size_t i = 0; i < n; ++i) edge_board_uart_put(data[i]);
}

/* RUN restarts SysTick to time an inference; no read overlaps a RUN, and the timeouts only
 * need a clock that moves forward from each read's own start. */
static edge_port_t port = {read_byte, write_bytes, edge_systick_restart, edge_systick_ticks, 0u,
                           EDGE_TIMER_SYSTICK};

const edge_port_t *edge_port_init(void) {
  edge_board_init();
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
  port.timer_hz = SystemCoreClock;
  return &port;
}

void edge_port_exit(int code) {
  (void)code;
  for (;;) {
    __asm__ volatile("wfi");
  }
}
