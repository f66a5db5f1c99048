/* edge_threads.h: a fixed pool of threads for the layers that split their rows. */
#ifndef EDGE_THREADS_H
#define EDGE_THREADS_H

#include <stdint.h>

/* The adapter the generated model passes for one layer: run rows [begin, end) of `phase`. */
typedef void (*edge_rows_task)(void *const *args, int32_t phase, int32_t begin, int32_t end);

/* Start the pool: `threads` in all, the caller included (0: one per online CPU). Returns
   how many there are. Without a call, layers run on the caller alone. */
int edge_threads_start(int threads);
void edge_threads_stop(void);

/* Called by the model: every thread runs one contiguous share of `rows`; returns when all
   are done. */
void edge_parallel_for(edge_rows_task task, void *const *args, int32_t phase, int32_t rows);

#endif
