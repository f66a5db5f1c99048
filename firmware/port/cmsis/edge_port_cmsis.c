/* edge_port_cmsis.c: the edge-sdk protocol for a CMSIS-Toolbox project.
 *
 * Timing uses the core's DWT cycle counter (core clock cycles) where the core has one, SysTick
 * otherwise (Cortex-M0/M0+). The serial link goes through two functions you implement for your
 * board's UART, e.g. with the vendor HAL or a CMSIS-Driver USART:
 *     int  edge_uart_getc(uint32_t timeout_ms); 0..255; -1 if the link is gone; -2 when
 *                                               timeout_ms (0: for ever) passed with no byte
 *     void edge_uart_putc(uint8_t byte);
 * The weak defaults below report "no link", so the program still links and runs its demo. */
#include "RTE_Components.h"
#include CMSIS_device_header

#include "edge_port.h"

__attribute__((weak)) int edge_uart_getc(uint32_t timeout_ms) {
  (void)timeout_ms;
  return EDGE_READ_CLOSED;
}

__attribute__((weak)) void edge_uart_putc(uint8_t byte) { (void)byte; }

static int read_byte(uint32_t timeout_ms) { return edge_uart_getc(timeout_ms); }

static void write_bytes(const uint8_t *data, size_t n) {
  for (size_t i = 0; i < n; ++i) edge_uart_putc(data[i]);
}

#if defined(DWT_CTRL_CYCCNTENA_Msk) && !defined(EDGE_NO_DWT)
static void timer_start(void) {
  CoreDebug->DEMCR |= CoreDebug_DEMCR_TRCENA_Msk;
  DWT->CYCCNT = 0;
  DWT->CTRL |= DWT_CTRL_CYCCNTENA_Msk;
}
static uint64_t timer_ticks(void) { return DWT->CYCCNT; }
#define EDGE_TIMER_KIND EDGE_TIMER_CYCLES
#else
static volatile uint32_t wraps;
void SysTick_Handler(void) { wraps++; }
static void timer_start(void) {
  wraps = 0;
  SysTick->LOAD = 0x00FFFFFFu;
  SysTick->VAL = 0;
  SysTick->CTRL = SysTick_CTRL_CLKSOURCE_Msk | SysTick_CTRL_TICKINT_Msk | SysTick_CTRL_ENABLE_Msk;
}
static uint64_t timer_ticks(void) {
  uint32_t w, v;
  do {
    w = wraps;
    v = SysTick->VAL;
  } while (w != wraps);
  return (uint64_t)w * 0x01000000u + (0x00FFFFFFu - v);
}
#define EDGE_TIMER_KIND EDGE_TIMER_SYSTICK
#endif

static edge_port_t port = {read_byte, write_bytes, timer_start, timer_ticks, 0u, EDGE_TIMER_KIND};

const edge_port_t *edge_port_init(void) {
  SystemCoreClockUpdate();
  port.timer_hz = SystemCoreClock;
  return &port;
}

void edge_port_exit(int code) {
  (void)code;
  for (;;) {
    __WFI();
  }
}
