/* TI LM3S6965 (QEMU lm3s6965evb): UART0 is a PL011 whose data register needs no setup. */
#include "board.h"

#define UART0_DR (*(volatile unsigned int *)0x4000C000u)

void board_putc(char c) { UART0_DR = (unsigned int)c; }

void board_exit(int code) {
  /* ARM semihosting SYS_EXIT_EXTENDED (0x20): r1 points at {ADP_Stopped_ApplicationExit, code}. */
  volatile unsigned int block[2] = {0x20026u, (unsigned int)code};
  register unsigned int r0 __asm__("r0") = 0x20u;
  register volatile unsigned int *r1 __asm__("r1") = block;
  __asm__ volatile("bkpt 0xAB" : : "r"(r0), "r"(r1) : "memory");
  for (;;) {
  }
}
