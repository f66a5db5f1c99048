/* Stub of Zephyr's <zephyr/kernel.h>: only what edge_port_zephyr.c uses. */
#pragma once
#include <stdint.h>
typedef struct { int64_t ticks; } k_timeout_t;
#define K_FOREVER ((k_timeout_t){-1})
int32_t k_sleep(k_timeout_t timeout);
void k_yield(void);
uint32_t k_cycle_get_32(void);
int64_t k_uptime_get(void);
int sys_clock_hw_cycles_per_sec(void);
