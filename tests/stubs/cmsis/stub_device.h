/* Stub of a CMSIS device header: the core registers edge_port_cmsis.c touches. */
#pragma once
#include <stdint.h>
typedef struct { volatile uint32_t CTRL, CYCCNT; } DWT_Type;
typedef struct { volatile uint32_t DEMCR; } CoreDebug_Type;
typedef struct { volatile uint32_t CTRL, LOAD, VAL, CALIB; } SysTick_Type;
#define DWT ((DWT_Type *)0xE0001000u)
#define CoreDebug ((CoreDebug_Type *)0xE000EDF0u)
#define SysTick ((SysTick_Type *)0xE000E010u)
#define DWT_CTRL_CYCCNTENA_Msk 1u
#define CoreDebug_DEMCR_TRCENA_Msk (1u << 24)
#define SysTick_CTRL_CLKSOURCE_Msk 4u
#define SysTick_CTRL_TICKINT_Msk 2u
#define SysTick_CTRL_ENABLE_Msk 1u
extern uint32_t SystemCoreClock;
void SystemCoreClockUpdate(void);
static inline void __WFI(void) { __asm__ volatile("wfi"); }
