/* edge_board_cmsis.h: what a board's support file gives the CMSIS port.
 *
 * edge-sdk ships one for each board in boards/ that has a CMSIS project (firmware/
 * edge_board_<board>.c). For a board of your own, write these three functions (vendor HAL,
 * CMSIS-Driver USART or registers) in any file of the project. */
#ifndef EDGE_BOARD_CMSIS_H_
#define EDGE_BOARD_CMSIS_H_

#include <stdint.h>

/* Runs first, before the protocol starts: core clock, caches, the console UART's pins and baud
 * rate. It must leave CMSIS's SystemCoreClock equal to the real core clock (call
 * SystemCoreClockUpdate() after changing clocks): timing figures and timeouts use it. */
void edge_board_init(void);

/* One received byte (0..255), or -1 when none has arrived yet. Never blocks. */
int edge_board_uart_poll(void);

/* Send one byte; waits while the transmitter is full. */
void edge_board_uart_put(uint8_t byte);

#endif /* EDGE_BOARD_CMSIS_H_ */
