/* edge_port_host.c: the protocol over stdin/stdout, for `--board host` (fast tests, no board). */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "edge_port.h"

static struct timespec start;

static int read_byte(void) {
  int c = getchar();
  return c == EOF ? -1 : c;
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
