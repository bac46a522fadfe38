/* Three tasks share the CPU cooperatively, then the firmware reports and exits.
 * Build-time faults for testing the farm: -DKARATOS_FAULT_FAIL (a task finds a wrong sum, exit 3)
 * and -DKARATOS_FAULT_HANG (never finishes). */
#include "board.h"
#include "kernel.h"

static int sum;

static enum task_status blink(struct task *self) {
  kputs("[blink] tick ");
  kputd(self->counter);
  kputs("\n");
  return ++self->counter == self->limit ? TASK_DONE : TASK_READY;
}

static enum task_status count(struct task *self) {
  sum += self->counter;
  return ++self->counter == self->limit ? TASK_DONE : TASK_READY;
}

static enum task_status report(struct task *self) {
  if (++self->counter < self->limit) return TASK_READY;
  kputs("[report] sum=");
  kputd(sum);
  kputs("\n");
  return TASK_DONE;
}

int main(void) {
  kputs("karatos-mini " KARATOS_TARGET " " KARATOS_PROFILE " booting\n");
  kernel_spawn("blink", blink, 3);
  kernel_spawn("count", count, 10);
  kernel_spawn("report", report, 12);
  int slices = kernel_run();
  kputs("scheduler ran ");
  kputd(slices);
  kputs(" slices\n");
#if defined(KARATOS_FAULT_HANG)
  kputs("hanging on purpose\n");
  for (;;) {
  }
#endif
  int expected = 45;
#if defined(KARATOS_FAULT_FAIL)
  expected = 46;
#endif
  if (sum != expected) {
    kputs("FAIL: sum is ");
    kputd(sum);
    kputs(", expected ");
    kputd(expected);
    kputs("\n");
    board_exit(3);
  }
  kputs("KARATOS OK: all tasks done\n");
  board_exit(0);
}
