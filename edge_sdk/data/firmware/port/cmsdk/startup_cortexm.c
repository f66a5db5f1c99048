/* startup_cortexm.c: vector table and reset handler for any Cortex-M core. */
#include <stdint.h>
#include <string.h>

#include "edge_port.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int main(void);
void SysTick_Handler(void);

void Reset_Handler(void) {
  memcpy(&_sdata, &_sidata, (size_t)((char *)&_edata - (char *)&_sdata));
  memset(&_sbss, 0, (size_t)((char *)&_ebss - (char *)&_sbss));
#if defined(__ARM_FP)
  /* Grant full access to CP10/CP11 (the FPU) before any float instruction runs. */
  *(volatile uint32_t *)0xE000ED88u |= (0xFu << 20);
  __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
  edge_port_exit(main());
}

/* Any fault ends the program with a distinct code: the host sees the board stop, not a hang. */
void Fault_Handler(void) { edge_port_exit(3); }

__attribute__((section(".isr_vector"), used)) void (*const edge_vectors[16])(void) = {
    (void (*)(void))(&_estack), Reset_Handler, Fault_Handler, Fault_Handler, Fault_Handler,
    Fault_Handler, Fault_Handler, 0, 0, 0, 0, Fault_Handler, Fault_Handler, 0, Fault_Handler,
    SysTick_Handler,
};
