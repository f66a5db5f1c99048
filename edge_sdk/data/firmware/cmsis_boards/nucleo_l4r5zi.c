/* ST NUCLEO-L4R5ZI: 120 MHz from HSI16 through the PLL (range 1 boost mode) and LPUART1 (PG7
 * TX, PG8 RX, alternate function 8), which the ST-LINK's virtual COM port carries to USB.
 *
 * Out of reset the part runs at 4 MHz (MSI). The sequence is RM0432's: boost mode, 5 flash
 * wait states, PLL (16 / 1 * 15 / 2 = 120 MHz), then the switch through an AHB divide-by-2
 * step, which the manual asks for above 80 MHz. Port G is powered from VDDIO2, which must be
 * declared valid (PWR_CR2.IOSV) before the pins work. The flash's instruction and data caches
 * are on from reset. Registers and fields by ST's device header (Keil::STM32L4xx_DFP). */
#include "RTE_Components.h"
#include CMSIS_device_header

#include "edge_board.h"
#include "edge_board_cmsis.h"

static void clock_120mhz(void) {
  RCC->APB1ENR1 |= RCC_APB1ENR1_PWREN;
  (void)RCC->APB1ENR1;
  PWR->CR5 &= ~PWR_CR5_R1MODE; /* range 1 boost: needed above 80 MHz */

  FLASH->ACR = (FLASH->ACR & ~FLASH_ACR_LATENCY) | FLASH_ACR_LATENCY_5WS | FLASH_ACR_PRFTEN |
               FLASH_ACR_ICEN | FLASH_ACR_DCEN;
  while ((FLASH->ACR & FLASH_ACR_LATENCY) != FLASH_ACR_LATENCY_5WS) {
  }

  RCC->CR |= RCC_CR_HSION;
  while (!(RCC->CR & RCC_CR_HSIRDY)) {
  }
  RCC->PLLCFGR = RCC_PLLCFGR_PLLSRC_HSI | (0u << RCC_PLLCFGR_PLLM_Pos) /* M = 1 */ |
                 (15u << RCC_PLLCFGR_PLLN_Pos) | (0u << RCC_PLLCFGR_PLLR_Pos) /* R = 2 */ |
                 RCC_PLLCFGR_PLLREN;
  RCC->CR |= RCC_CR_PLLON;
  while (!(RCC->CR & RCC_CR_PLLRDY)) {
  }

  RCC->CFGR = (RCC->CFGR & ~RCC_CFGR_HPRE) | RCC_CFGR_HPRE_DIV2;
  RCC->CFGR = (RCC->CFGR & ~RCC_CFGR_SW) | RCC_CFGR_SW_PLL;
  while ((RCC->CFGR & RCC_CFGR_SWS) != RCC_CFGR_SWS_PLL) {
  }
  for (volatile int i = 0; i < 100; ++i) { /* at least 1 us at 60 MHz before full speed */
  }
  RCC->CFGR = (RCC->CFGR & ~RCC_CFGR_HPRE) | RCC_CFGR_HPRE_DIV1;
  SystemCoreClockUpdate();
}

void edge_board_init(void) {
  clock_120mhz();

  PWR->CR2 |= PWR_CR2_IOSV; /* VDDIO2 valid: port G */
  RCC->AHB2ENR |= RCC_AHB2ENR_GPIOGEN;
  RCC->APB1ENR2 |= RCC_APB1ENR2_LPUART1EN;
  RCC->CCIPR &= ~RCC_CCIPR_LPUART1SEL; /* LPUART1 clocked by PCLK1 (120 MHz) */
  (void)RCC->APB1ENR2;
  /* PG7 and PG8: alternate function 8 (LPUART1) */
  GPIOG->MODER = (GPIOG->MODER & ~(GPIO_MODER_MODE7 | GPIO_MODER_MODE8)) |
                 GPIO_MODER_MODE7_1 | GPIO_MODER_MODE8_1;
  GPIOG->AFR[0] = (GPIOG->AFR[0] & ~(0xFu << 28)) | (8u << 28);
  GPIOG->AFR[1] = (GPIOG->AFR[1] & ~0xFu) | 8u;

  LPUART1->CR1 = 0u;
  /* LPUART: BRR = 256 * f_ck / baud */
  LPUART1->BRR = (uint32_t)(((uint64_t)SystemCoreClock * 256u + EDGE_UART_BAUD / 2u) /
                            EDGE_UART_BAUD);
  LPUART1->CR1 = USART_CR1_TE | USART_CR1_RE | USART_CR1_UE;
}

int edge_board_uart_poll(void) {
  uint32_t isr = LPUART1->ISR;
  if (isr & (USART_ISR_ORE | USART_ISR_FE | USART_ISR_NE)) {
    LPUART1->ICR = USART_ICR_ORECF | USART_ICR_FECF | USART_ICR_NECF; /* a lost byte: CRC says */
  }
  if (!(isr & USART_ISR_RXNE_RXFNE)) return -1;
  return (int)(LPUART1->RDR & 0xFFu);
}

void edge_board_uart_put(uint8_t byte) {
  while (!(LPUART1->ISR & USART_ISR_TXE_TXFNF)) {
  }
  LPUART1->TDR = byte;
}
