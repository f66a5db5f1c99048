/* edge_port_arduino.cpp: the edge-sdk protocol on an Arduino Stream (Serial by default). */
#include <Arduino.h>

extern "C" {
#include "edge_port.h"
}

static Stream *edge_link = &Serial;
static uint32_t edge_start_us;

static int read_byte(uint32_t timeout_ms) {
  uint32_t start = millis();
  while (edge_link->available() <= 0) {
    if (timeout_ms != 0u && millis() - start > timeout_ms) return EDGE_READ_TIMEOUT;
    yield();
  }
  return edge_link->read();
}

static void write_bytes(const uint8_t *data, size_t n) { edge_link->write(data, n); }

static void timer_start(void) { edge_start_us = micros(); }

/* micros() wraps after ~71 minutes; one inference is far shorter. */
static uint64_t timer_ticks(void) { return (uint32_t)(micros() - edge_start_us); }

/* micros(): a 1 MHz clock, not core cycles. */
static const edge_port_t port = {read_byte, write_bytes, timer_start, timer_ticks, 1000000u,
                                 EDGE_TIMER_CLOCK};

void edge_port_use_stream(Stream &stream) { edge_link = &stream; }

extern "C" const edge_port_t *edge_port_init(void) { return &port; }

extern "C" void edge_port_exit(int code) { (void)code; }
