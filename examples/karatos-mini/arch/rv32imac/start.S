/* Entry at 0x80000000 (QEMU virt with -bios none): stack, .bss, main. */
  .section .text.start
  .globl _start
_start:
  la sp, _estack
  la t0, _sbss
  la t1, _ebss
1:
  bgeu t0, t1, 2f
  sw zero, 0(t0)
  addi t0, t0, 4
  j 1b
2:
  call main
3:
  j 3b

/* The semihosting trap: these three instructions, uncompressed and in one aligned block. */
  .text
  .globl semihost_call
  .balign 16
  .option push
  .option norvc
semihost_call:
  slli x0, x0, 0x1f
  ebreak
  srai x0, x0, 7
  ret
  .option pop
