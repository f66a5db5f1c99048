/* Arm MPS2/MPS3 FPGA boards (and QEMU's models of them): the CMSDK APB UART that the board's
 * USB serial port reaches, at the address and clock in edge_board.h (from boards/<board>.yaml).
 *
 * The generic ARMCMx system files of ARM::Cortex_DFP assume a 25 MHz core; the FPGA images
 * run at their own clock (AN505: 20 MHz, AN547: 32 MHz), so SystemCoreClock is set here. */
#include <stdint.h>

#include "edge_board.h"
#include "edge_board_cmsis.h"
#include "edge_cmsdk_uart.h"

extern uint32_t SystemCoreClock;

#define REG(addr) (*(volatile uint32_t *)(addr))

#if EDGE_CORE_CACHES
/* Cortex-M7/M55 L1 caches, as the architecture defines their maintenance registers: invalidate
 * then enable the instruction cache, invalidate the data cache by set and way, enable it. */
#define SCB_CCR REG(0xE000ED14u)
#define SCB_CCSIDR REG(0xE000ED80u)
#define SCB_CSSELR REG(0xE000ED84u)
#define SCB_ICIALLU REG(0xE000EF50u)
#define SCB_DCISW REG(0xE000EF60u)
#define CCR_DC (1u << 16)
#define CCR_IC (1u << 17)

static void barrier(void) { __asm__ volatile("dsb 0xF\n isb 0xF" ::: "memory"); }

static void enable_caches(void) {
  if (!(SCB_CCR & CCR_IC)) {
    barrier();
    SCB_ICIALLU = 0u;
    barrier();
    SCB_CCR |= CCR_IC;
    barrier();
  }
  if (!(SCB_CCR & CCR_DC)) {
    SCB_CSSELR = 0u; /* level 1 data cache */
    barrier();
    uint32_t ccsidr = SCB_CCSIDR;
    uint32_t line_shift = (ccsidr & 0x7u) + 4u; /* log2(bytes per line) */
    uint32_t ways = (ccsidr >> 3) & 0x3FFu;     /* ways - 1 */
    uint32_t way_shift = (uint32_t)__builtin_clz(ways | 1u);
    for (uint32_t set = (ccsidr >> 13) & 0x7FFFu;; --set) {
      for (uint32_t way = ways;; --way) {
        SCB_DCISW = (set << line_shift) | (way << way_shift);
        if (way == 0u) break;
      }
      if (set == 0u) break;
    }
    barrier();
    SCB_CCR |= CCR_DC;
    barrier();
  }
}
#endif

void edge_board_init(void) {
  SystemCoreClock = EDGE_CPU_HZ;
#if EDGE_CORE_CACHES
  enable_caches();
#endif
  edge_cmsdk_uart_init(EDGE_CPU_HZ / EDGE_UART_BAUD);
}

int edge_board_uart_poll(void) { return edge_cmsdk_uart_poll(); }

void edge_board_uart_put(uint8_t byte) { edge_cmsdk_uart_put(byte); }
