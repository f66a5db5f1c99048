/* edge_cmsdk_uart.h: the CMSDK APB UART of Arm's MPS2/MPS3 FPGA boards (and QEMU's models of
 * them), at EDGE_UART_BASE from edge_board.h. Used by the bare-metal CMSDK port and by the CMSIS
 * projects' support file for those boards. */
#ifndef EDGE_CMSDK_UART_H
#define EDGE_CMSDK_UART_H

#include <stdint.h>

#include "edge_board.h"

#define EDGE_CMSDK_UART_REG(offset) (*(volatile uint32_t *)(EDGE_UART_BASE + (offset)))
#define EDGE_CMSDK_UART_DATA EDGE_CMSDK_UART_REG(0x00u)
#define EDGE_CMSDK_UART_STATE EDGE_CMSDK_UART_REG(0x04u)
#define EDGE_CMSDK_UART_CTRL EDGE_CMSDK_UART_REG(0x08u)
#define EDGE_CMSDK_UART_BAUDDIV EDGE_CMSDK_UART_REG(0x10u)
#define EDGE_CMSDK_UART_TX_FULL 0x1u
#define EDGE_CMSDK_UART_RX_FULL 0x2u
#define EDGE_CMSDK_UART_RX_OVERRUN 0x8u

/* BAUDDIV = clock / baud (the UART needs at least 16); transmitter and receiver on. */
static inline void edge_cmsdk_uart_init(uint32_t bauddiv) {
  EDGE_CMSDK_UART_BAUDDIV = bauddiv < 16u ? 16u : bauddiv;
  EDGE_CMSDK_UART_CTRL = 0x3u;
}

/* The received byte, or -1 when none waits. An overrun (a byte lost while the last one sat
 * unread) is cleared, else the receiver stops; the protocol's CRC catches the lost byte. */
static inline int edge_cmsdk_uart_poll(void) {
  uint32_t state = EDGE_CMSDK_UART_STATE;
  if (state & EDGE_CMSDK_UART_RX_OVERRUN) EDGE_CMSDK_UART_STATE = EDGE_CMSDK_UART_RX_OVERRUN;
  if (!(state & EDGE_CMSDK_UART_RX_FULL)) return -1;
  return (int)(EDGE_CMSDK_UART_DATA & 0xFFu);
}

static inline void edge_cmsdk_uart_put(uint8_t byte) {
  while (EDGE_CMSDK_UART_STATE & EDGE_CMSDK_UART_TX_FULL) {
  }
  EDGE_CMSDK_UART_DATA = byte;
}

#endif /* EDGE_CMSDK_UART_H */
