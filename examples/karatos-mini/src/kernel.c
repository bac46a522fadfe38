#include "kernel.h"

#include "board.h"

static struct task tasks[KARATOS_MAX_TASKS];
static int task_count;

int kernel_spawn(const char *name, enum task_status (*step)(struct task *), int limit) {
  if (task_count == KARATOS_MAX_TASKS) return -1;
  tasks[task_count].name = name;
  tasks[task_count].step = step;
  tasks[task_count].counter = 0;
  tasks[task_count].limit = limit;
  return task_count++;
}

int kernel_run(void) {
  int slices = 0;
  int live = task_count;
  char done[KARATOS_MAX_TASKS] = {0};
  while (live > 0) {
    for (int i = 0; i < task_count; ++i) {
      if (done[i]) continue;
      ++slices;
      if (tasks[i].step(&tasks[i]) == TASK_DONE) {
        done[i] = 1;
        --live;
      }
    }
  }
  return slices;
}

void kputs(const char *s) {
  while (*s) board_putc(*s++);
}

void kputd(int value) {
  char buf[12];
  int i = 0;
  unsigned v = value < 0 ? (unsigned)-value : (unsigned)value;
  if (value < 0) board_putc('-');
  do {
    buf[i++] = (char)('0' + v % 10);
    v /= 10;
  } while (v && i < 11);
  while (i) board_putc(buf[--i]);
}
