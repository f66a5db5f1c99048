/* edge_port_cmsdk.c: Arm MPS2/MPS3 boards (and QEMU's models of them).
 * CMSDK APB UART for the link, SysTick for timing, semihosting to end the emulator.
 * Board values come from edge_board.h, generated from boards/<board>.yaml. */
#include <stdint.h>

#include "edge_board.h"
#include "edge_port.h"

#define REG(addr) (*(volatile uint32_t *)(addr))

/* CMSDK APB UART */
#define UART_DATA REG(EDGE_UART_BASE + 0x00u)
#define UART_STATE REG(EDGE_UART_BASE + 0x04u)
#define UART_CTRL REG(EDGE_UART_BASE + 0x08u)
#define UART_BAUDDIV REG(EDGE_UART_BASE + 0x10u)
#define UART_STATE_TX_FULL 0x1u
#define UART_STATE_RX_FULL 0x2u

/* SysTick (ARMv6-M/v7-M/v8-M system control space) */
#define SYST_CSR REG(0xE000E010u)
#define SYST_RVR REG(0xE000E014u)
#define SYST_CVR REG(0xE000E018u)
#define SYST_RELOAD 0x00FFFFFFu

static volatile uint32_t systick_wraps;

void SysTick_Handler(void) { systick_wraps++; }

static void write_bytes(const uint8_t *data, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    while (UART_STATE & UART_STATE_TX_FULL) {
    }
    UART_DATA = data[i];
  }
}

static void timer_start(void) {
  SYST_CSR = 0;
  systick_wraps = 0;
  SYST_RVR = SYST_RELOAD;
  SYST_CVR = 0;
  SYST_CSR = 0x7u; /* enable, interrupt on wrap, processor clock */
}

static uint64_t timer_ticks(void) {
  uint32_t wraps, value;
  do {
    wraps = systick_wraps;
    value = SYST_CVR;
  } while (wraps != systick_wraps);
  return (uint64_t)wraps * (SYST_RELOAD + 1u) + (SYST_RELOAD - value);
}

/* The timeout runs on SysTick, which free-runs from edge_port_init on (RUN restarts it; no read
   overlaps a RUN). Under QEMU -icount it counts virtual time, so the wait is in instructions. */
static int read_byte(uint32_t timeout_ms) {
  uint64_t start = timer_ticks();
  uint64_t limit = (uint64_t)timeout_ms * (EDGE_CPU_HZ / 1000u);
  while (!(UART_STATE & UART_STATE_RX_FULL)) {
    if (timeout_ms != 0u && timer_ticks() - start > limit) return EDGE_READ_TIMEOUT;
  }
  return (int)(UART_DATA & 0xFFu);
}

static const edge_port_t port = {read_byte, write_bytes, timer_start, timer_ticks,
                                 EDGE_CPU_HZ, EDGE_TIMER_SYSTICK};

const edge_port_t *edge_port_init(void) {
  UART_BAUDDIV = EDGE_UART_BAUDDIV;
  UART_CTRL = 0x3u; /* TX and RX enabled */
  timer_start();
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
