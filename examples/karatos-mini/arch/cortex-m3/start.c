/* Vector table and reset handler: copy .data, clear .bss, call main. */
extern unsigned int _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int main(void);

void reset_handler(void) {
  unsigned int *src = &_sidata;
  for (unsigned int *dst = &_sdata; dst < &_edata;) *dst++ = *src++;
  for (unsigned int *dst = &_sbss; dst < &_ebss;) *dst++ = 0;
  main();
  for (;;) {
  }
}

static void default_handler(void) {
  for (;;) {
  }
}

__attribute__((section(".vectors"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))&_estack, reset_handler, default_handler, default_handler, default_handler, default_handler,
    default_handler,          0,             0,               0,               0,               default_handler,
    default_handler,          0,             default_handler, default_handler,
};
