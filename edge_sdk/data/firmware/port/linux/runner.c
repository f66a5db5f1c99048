/* runner.c: run an edge-sdk model on a Linux board, no Python and no TVM needed.
 *
 *   ./runner INPUT.bin OUTPUT.bin [BENCH_RUNS [THREADS]]
 *
 * INPUT.bin holds one or more inputs back to back (the model's input type, raw bytes);
 * OUTPUT.bin receives the outputs in the same order. With BENCH_RUNS, the first input is run
 * that many more times and latency percentiles are measured. THREADS (default 0: one per
 * online CPU) is how many threads share each layer's rows. One JSON line goes to stdout. */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "edge_model_config.h"
#include "edge_threads.h"

static uint8_t input[EDGE_MODEL_INPUT_BYTES] __attribute__((aligned(16)));
static uint8_t output[EDGE_MODEL_OUTPUT_BYTES] __attribute__((aligned(16)));
static uint8_t arena[EDGE_MODEL_ARENA_SIZE + 1] __attribute__((aligned(16)));

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int by_value(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s INPUT.bin OUTPUT.bin [BENCH_RUNS]\n", argv[0]);
    return 2;
  }
  FILE *in = fopen(argv[1], "rb");
  FILE *out = fopen(argv[2], "wb");
  if (!in || !out) {
    fprintf(stderr, "runner: cannot open %s\n", in ? argv[2] : argv[1]);
    return 2;
  }
  long bench = argc > 3 ? strtol(argv[3], NULL, 10) : 0;
  int threads = edge_threads_start(argc > 4 ? (int)strtol(argv[4], NULL, 10) : 0);
  unsigned samples = 0;
  uint8_t first[EDGE_MODEL_INPUT_BYTES];
  while (fread(input, 1, sizeof input, in) == sizeof input) {
    if (samples == 0) memcpy(first, input, sizeof input);
    if (edge_model_run(input, output, arena) != 0) {
      fprintf(stderr, "runner: inference failed\n");
      return 1;
    }
    fwrite(output, 1, sizeof output, out);
    samples++;
  }
  fclose(in);
  if (fclose(out) != 0 || samples == 0) {
    fprintf(stderr, "runner: %s\n", samples ? "cannot write the output" : "no complete input");
    return 1;
  }
  uint64_t p50 = 0, p90 = 0, p99 = 0, total = 0;
  if (bench > 0) {
    uint64_t *t = malloc(sizeof(uint64_t) * (size_t)bench);
    if (!t) return 1;
    for (long i = 0; i < bench; ++i) {
      memcpy(input, first, sizeof input);
      uint64_t start = now_ns();
      edge_model_run(input, output, arena);
      t[i] = now_ns() - start;
      total += t[i];
    }
    qsort(t, (size_t)bench, sizeof t[0], by_value);
    p50 = t[(size_t)(bench * 50 / 100)];
    p90 = t[(size_t)(bench * 90 / 100)];
    p99 = t[(size_t)(bench * 99 / 100)];
    free(t);
  }
  edge_threads_stop();
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  printf("{\"model\": \"%s\", \"samples\": %u, \"bench_runs\": %ld, \"threads\": %d, "
         "\"p50_ns\": %llu, \"p90_ns\": %llu, \"p99_ns\": %llu, \"mean_ns\": %llu, "
         "\"peak_rss_kb\": %ld}\n",
         EDGE_MODEL_NAME, samples, bench, threads, (unsigned long long)p50,
         (unsigned long long)p90, (unsigned long long)p99,
         (unsigned long long)(bench > 0 ? total / (uint64_t)bench : 0), usage.ru_maxrss);
  return 0;
}
