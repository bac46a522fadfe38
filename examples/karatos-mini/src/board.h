/* What each board provides to the kernel: a UART to print to and a way to end the run. */
#ifndef KARATOS_BOARD_H
#define KARATOS_BOARD_H

void board_putc(char c);
/* Ends the emulator with `code` through semihosting (SYS_EXIT_EXTENDED). Never returns. */
void board_exit(int code) __attribute__((noreturn));

#endif
