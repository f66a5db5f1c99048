/* ST STM32F746G-DISCO: 216 MHz from the 25 MHz crystal (HSE), L1 caches and the ART flash
 * accelerator on, and USART1 (PA9 TX, PB7 RX) at EDGE_UART_BAUD, which the ST-LINK's virtual
 * COM port carries to the USB cable.
 *
 * Out of reset the part runs at 16 MHz from HSI with its caches off: a model would run at a
 * fifteenth of its speed. The sequence is RM0385's: power scale 1, PLL (25 / 25 * 432 / 2 =
 * 216 MHz), over-drive, 7 flash wait states, then the switch. APB2 (USART1) runs at 108 MHz.
 * Registers and fields by the names of ST's device header (Keil::STM32F7xx_DFP). */
#include "RTE_Components.h"
#include CMSIS_device_header

#include "edge_board.h"
#include "edge_board_cmsis.h"

static void clock_216mhz(void) {
  RCC->APB1ENR |= RCC_APB1ENR_PWREN;
  PWR->CR1 |= PWR_CR1_VOS; /* scale 1 */

  RCC->CR |= RCC_CR_HSEON;
  while (!(RCC->CR & RCC_CR_HSERDY)) {
  }
  RCC->PLLCFGR = (25u << RCC_PLLCFGR_PLLM_Pos) | (432u << RCC_PLLCFGR_PLLN_Pos) |
                 (0u << RCC_PLLCFGR_PLLP_Pos) /* P = 2 */ | RCC_PLLCFGR_PLLSRC_HSE |
                 (9u << RCC_PLLCFGR_PLLQ_Pos); /* 48 MHz for USB/SDMMC */
  RCC->CR |= RCC_CR_PLLON;

  PWR->CR1 |= PWR_CR1_ODEN; /* over-drive, needed above 180 MHz */
  while (!(PWR->CSR1 & PWR_CSR1_ODRDY)) {
  }
  PWR->CR1 |= PWR_CR1_ODSWEN;
  while (!(PWR->CSR1 & PWR_CSR1_ODSWRDY)) {
  }
  while (!(RCC->CR & RCC_CR_PLLRDY)) {
  }

  FLASH->ACR = FLASH_ACR_LATENCY_7WS | FLASH_ACR_PRFTEN | FLASH_ACR_ARTEN;
  while ((FLASH->ACR & FLASH_ACR_LATENCY) != FLASH_ACR_LATENCY_7WS) {
  }
  RCC->CFGR = (RCC->CFGR & ~(RCC_CFGR_HPRE | RCC_CFGR_PPRE1 | RCC_CFGR_PPRE2)) |
              RCC_CFGR_HPRE_DIV1 | RCC_CFGR_PPRE1_DIV4 | RCC_CFGR_PPRE2_DIV2;
  RCC->CFGR = (RCC->CFGR & ~RCC_CFGR_SW) | RCC_CFGR_SW_PLL;
  while ((RCC->CFGR & RCC_CFGR_SWS) != RCC_CFGR_SWS_PLL) {
  }
  SystemCoreClockUpdate();
}

void edge_board_init(void) {
  clock_216mhz();
  SCB_EnableICache();
  SCB_EnableDCache();

  RCC->AHB1ENR |= RCC_AHB1ENR_GPIOAEN | RCC_AHB1ENR_GPIOBEN;
  RCC->APB2ENR |= RCC_APB2ENR_USART1EN;
  (void)RCC->APB2ENR; /* the clock reaches the peripheral before the first access */
  /* PA9 and PB7: alternate function 7 (USART1) */
  GPIOA->MODER = (GPIOA->MODER & ~GPIO_MODER_MODER9) | GPIO_MODER_MODER9_1;
  GPIOA->AFR[1] = (GPIOA->AFR[1] & ~(0xFu << 4)) | (7u << 4);
  GPIOB->MODER = (GPIOB->MODER & ~GPIO_MODER_MODER7) | GPIO_MODER_MODER7_1;
  GPIOB->AFR[0] = (GPIOB->AFR[0] & ~(0xFu << 28)) | (7u << 28);
  GPIOB->PUPDR = (GPIOB->PUPDR & ~GPIO_PUPDR_PUPDR7) | GPIO_PUPDR_PUPDR7_0; /* RX idles high */

  USART1->CR1 = 0u;
  USART1->BRR = (SystemCoreClock / 2u + EDGE_UART_BAUD / 2u) / EDGE_UART_BAUD; /* PCLK2 */
  USART1->CR1 = USART_CR1_TE | USART_CR1_RE | USART_CR1_UE;
}

int edge_board_uart_poll(void) {
  uint32_t isr = USART1->ISR;
  if (isr & (USART_ISR_ORE | USART_ISR_FE | USART_ISR_NE)) {
    USART1->ICR = USART_ICR_ORECF | USART_ICR_FECF | USART_ICR_NCF; /* a lost byte: CRC says */
  }
  if (!(isr & USART_ISR_RXNE)) return -1;
  return (int)(USART1->RDR & 0xFFu);
}

void edge_board_uart_put(uint8_t byte) {
  while (!(USART1->ISR & USART_ISR_TXE)) {
  }
  USART1->TDR = byte;
}
