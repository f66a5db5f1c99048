/* edge_port_zephyr.c: the edge-sdk protocol on Zephyr's console UART (polling API). */
#include <zephyr/device.h>
#include <zephyr/devicetree.h>
#include <zephyr/drivers/uart.h>
#include <zephyr/kernel.h>

#include "edge_port.h"

static const struct device *const uart = DEVICE_DT_GET(DT_CHOSEN(zephyr_console));
static uint32_t start_cycles;

static int read_byte(uint32_t timeout_ms) {
  unsigned char c;
  int64_t start = k_uptime_get();
  while (uart_poll_in(uart, &c) != 0) {
    if (timeout_ms != 0u && k_uptime_get() - start > (int64_t)timeout_ms) return EDGE_READ_TIMEOUT;
    k_yield();
  }
  return c;
}

static void write_bytes(const uint8_t *data, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    uart_poll_out(uart, data[i]);
  }
}

static void timer_start(void) { start_cycles = k_cycle_get_32(); }

static uint64_t timer_ticks(void) { return (uint32_t)(k_cycle_get_32() - start_cycles); }

/* k_cycle_get_32 counts Zephyr's hardware clock: the core clock on some SoCs, a 32 kHz RTC on
   nRF52, so it is reported as a clock at its rate, not as core cycles. */
static edge_port_t port = {read_byte, write_bytes, timer_start, timer_ticks, 0u,
                           EDGE_TIMER_CLOCK};

const edge_port_t *edge_port_init(void) {
  port.timer_hz = (uint32_t)sys_clock_hw_cycles_per_sec();
  return &port;
}

void edge_port_exit(int code) {
  (void)code;
  for (;;) {
    k_sleep(K_FOREVER);
  }
}
