/* edge_port_host.c: the protocol over stdin/stdout, for `--board host` (fast tests, no board). */
#define _POSIX_C_SOURCE 200809L
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "edge_port.h"

static struct timespec start;

/* stdin is read with read(2) into our own buffer, not stdio, so that poll(2) sees what is
   really pending when a timeout is asked for. */
static unsigned char in_buf[4096];
static size_t in_pos, in_len;

static int read_byte(uint32_t timeout_ms) {
  if (in_pos == in_len) {
    if (timeout_ms != 0u) {
      struct pollfd fd = {0, POLLIN, 0};
      int ready = poll(&fd, 1, (int)timeout_ms);
      if (ready == 0) return EDGE_READ_TIMEOUT;
    }
    ssize_t n = read(0, in_buf, sizeof in_buf);
    if (n <= 0) return EDGE_READ_CLOSED;
    in_pos = 0;
    in_len = (size_t)n;
  }
  return in_buf[in_pos++];
}

static void write_bytes(const uint8_t *data, size_t n) {
  fwrite(data, 1, n, stdout);
  fflush(stdout);
}

static void timer_start(void) { clock_gettime(CLOCK_MONOTONIC, &start); }

static uint64_t timer_ticks(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (uint64_t)(now.tv_sec - start.tv_sec) * 1000000000u + (uint64_t)now.tv_nsec -
         (uint64_t)start.tv_nsec;
}

static const edge_port_t port = {read_byte, write_bytes, timer_start, timer_ticks,
                                 1000000000u, EDGE_TIMER_NANOSECONDS};

const edge_port_t *edge_port_init(void) { return &port; }

void edge_port_exit(int code) { exit(code); }
