/* Nordic nRF52840 DK: the 64 MHz crystal oscillator (HFXO) started, the instruction cache on,
 * and UART0 (P0.06 TX, P0.08 RX, as the DK wires them to the J-Link's virtual COM port).
 *
 * The core always runs at 64 MHz; the crystal makes the UART's baud rate and the timing
 * figures exact (the RC oscillator drifts by percents). UART0 is the peripheral without
 * EasyDMA at UARTE0's address: one byte at a time needs no RAM buffer.
 * Registers by the names of Nordic's MDK header (NordicSemiconductor::nRF_DeviceFamilyPack). */
#include "RTE_Components.h"
#include CMSIS_device_header

#include "edge_board.h"
#include "edge_board_cmsis.h"

#define TX_PIN 6u
#define RX_PIN 8u

/* The BAUDRATE register's codes (nRF52840 product specification, UART chapter). */
static uint32_t baud_code(uint32_t baud) {
  switch (baud) {
    case 9600u: return 0x00275000u;
    case 19200u: return 0x004EA000u;
    case 38400u: return 0x009D5000u;
    case 57600u: return 0x00EBF000u;
    case 230400u: return 0x03AFB000u;
    case 460800u: return 0x075F7000u;
    case 921600u: return 0x0EBED000u;
    case 1000000u: return 0x10000000u;
    default: return 0x01D7E000u; /* 115200 */
  }
}

void edge_board_init(void) {
  NRF_CLOCK->EVENTS_HFCLKSTARTED = 0u;
  NRF_CLOCK->TASKS_HFCLKSTART = 1u;
  while (NRF_CLOCK->EVENTS_HFCLKSTARTED == 0u) {
  }
  NRF_NVMC->ICACHECNF = NVMC_ICACHECNF_CACHEEN_Msk;
  SystemCoreClockUpdate();

  NRF_P0->OUTSET = 1u << TX_PIN; /* idle high before the UART takes the pin */
  NRF_P0->PIN_CNF[TX_PIN] = GPIO_PIN_CNF_DIR_Output << GPIO_PIN_CNF_DIR_Pos;
  NRF_P0->PIN_CNF[RX_PIN] = (GPIO_PIN_CNF_DIR_Input << GPIO_PIN_CNF_DIR_Pos) |
                            (GPIO_PIN_CNF_INPUT_Connect << GPIO_PIN_CNF_INPUT_Pos) |
                            (GPIO_PIN_CNF_PULL_Pullup << GPIO_PIN_CNF_PULL_Pos);
  NRF_UART0->PSEL.TXD = TX_PIN;
  NRF_UART0->PSEL.RXD = RX_PIN;
  NRF_UART0->BAUDRATE = baud_code(EDGE_UART_BAUD);
  NRF_UART0->CONFIG = 0u; /* 8N1, no flow control */
  NRF_UART0->ENABLE = UART_ENABLE_ENABLE_Enabled << UART_ENABLE_ENABLE_Pos;
  NRF_UART0->EVENTS_RXDRDY = 0u;
  NRF_UART0->EVENTS_TXDRDY = 0u;
  NRF_UART0->TASKS_STARTRX = 1u;
  NRF_UART0->TASKS_STARTTX = 1u;
}

int edge_board_uart_poll(void) {
  if (NRF_UART0->EVENTS_ERROR) { /* overrun, framing: the CRC will tell the host */
    NRF_UART0->ERRORSRC = NRF_UART0->ERRORSRC; /* write 1 to clear */
    NRF_UART0->EVENTS_ERROR = 0u;
  }
  if (NRF_UART0->EVENTS_RXDRDY == 0u) return -1;
  NRF_UART0->EVENTS_RXDRDY = 0u;
  return (int)(NRF_UART0->RXD & 0xFFu);
}

void edge_board_uart_put(uint8_t byte) {
  NRF_UART0->EVENTS_TXDRDY = 0u;
  NRF_UART0->TXD = byte;
  while (NRF_UART0->EVENTS_TXDRDY == 0u) {
  }
}
