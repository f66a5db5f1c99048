/* edge_threads.c: the rows of a layer split over a fixed pool of threads (Linux runner).
 *
 * The model calls edge_parallel_for() for each layer that can split its output rows (the
 * kernels for Linux CPUs); this definition replaces the model's serial one. The pool is
 * started once with N threads (the caller plus N-1 workers) and each call hands every thread
 * one contiguous share of the rows, then waits for all of them: no allocation per call, no
 * TVM runtime. Workers spin briefly between layers (layers take tens of microseconds, a
 * sleep/wake round trip about as long), then sleep on a condition variable. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "edge_threads.h"

#define EDGE_MAX_THREADS 64
#define EDGE_SPIN_ROUNDS 20000

static struct {
  int threads;                 /* including the caller */
  pthread_t workers[EDGE_MAX_THREADS];
  pthread_mutex_t lock;
  pthread_cond_t wake;
  /* the current job, published by bumping `generation` */
  edge_rows_task task;
  void *const *args;
  int32_t phase, rows;
  unsigned generation;
  int finished;                /* workers done with the current job */
  int stop;
} pool = {1, {0}, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0, 0, 0, 0};

static void run_share(int who) {
  int32_t begin = (int32_t)((int64_t)pool.rows * who / pool.threads);
  int32_t end = (int32_t)((int64_t)pool.rows * (who + 1) / pool.threads);
  if (begin < end) pool.task(pool.args, pool.phase, begin, end);
}

static void *worker(void *arg) {
  int who = (int)(intptr_t)arg;
  unsigned seen = 0;
  for (;;) {
    unsigned now = 0;
    for (int spin = 0; spin < EDGE_SPIN_ROUNDS; ++spin) {
      now = __atomic_load_n(&pool.generation, __ATOMIC_ACQUIRE);
      if (now != seen) break;
    }
    if (now == seen) {
      pthread_mutex_lock(&pool.lock);
      while ((now = __atomic_load_n(&pool.generation, __ATOMIC_ACQUIRE)) == seen && !pool.stop)
        pthread_cond_wait(&pool.wake, &pool.lock);
      pthread_mutex_unlock(&pool.lock);
    }
    if (__atomic_load_n(&pool.stop, __ATOMIC_ACQUIRE)) return NULL;
    seen = now;
    run_share(who);
    __atomic_add_fetch(&pool.finished, 1, __ATOMIC_ACQ_REL);
  }
}

int edge_threads_start(int threads) {
  if (threads <= 0) threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
  if (threads < 1) threads = 1;
  if (threads > EDGE_MAX_THREADS) threads = EDGE_MAX_THREADS;
  pool.threads = 1;
  for (int k = 1; k < threads; ++k) {
    if (pthread_create(&pool.workers[k], NULL, worker, (void *)(intptr_t)k) != 0) break;
    pool.threads = k + 1;
  }
  return pool.threads;
}

void edge_threads_stop(void) {
  pthread_mutex_lock(&pool.lock);
  __atomic_store_n(&pool.stop, 1, __ATOMIC_RELEASE);
  pthread_cond_broadcast(&pool.wake);
  pthread_mutex_unlock(&pool.lock);
  for (int k = 1; k < pool.threads; ++k) pthread_join(pool.workers[k], NULL);
  pool.threads = 1;
}

void edge_parallel_for(edge_rows_task task, void *const *args, int32_t phase, int32_t rows) {
  if (pool.threads == 1 || rows < 2) {
    task(args, phase, 0, rows);
    return;
  }
  pool.task = task;
  pool.args = args;
  pool.phase = phase;
  pool.rows = rows;
  __atomic_store_n(&pool.finished, 0, __ATOMIC_RELAXED);
  pthread_mutex_lock(&pool.lock);
  __atomic_add_fetch(&pool.generation, 1, __ATOMIC_RELEASE);
  pthread_cond_broadcast(&pool.wake);
  pthread_mutex_unlock(&pool.lock);
  run_share(0);
  while (__atomic_load_n(&pool.finished, __ATOMIC_ACQUIRE) != pool.threads - 1) sched_yield();
}
