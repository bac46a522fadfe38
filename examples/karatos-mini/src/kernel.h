/* karatos-mini: a cooperative scheduler. Tasks are run-to-yield functions with their own state. */
#ifndef KARATOS_KERNEL_H
#define KARATOS_KERNEL_H

#define KARATOS_MAX_TASKS 8

enum task_status { TASK_READY, TASK_DONE };

struct task {
  const char *name;
  enum task_status (*step)(struct task *self); /* one slice of work; returns TASK_DONE when finished */
  int counter;
  int limit;
};

int kernel_spawn(const char *name, enum task_status (*step)(struct task *), int limit);
/* Runs the ready tasks round-robin until all are done; returns how many slices ran. */
int kernel_run(void);

void kputs(const char *s);
void kputd(int value);

#endif
