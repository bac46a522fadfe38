//! A cooperative scheduler shared by every board: tasks are run-to-yield state machines, run
//! round-robin one slice at a time until each says it is done. No allocation, no statics.
#![no_std]

/// What a task says after one slice of work.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Status {
    Ready,
    Done,
}

/// Where tasks print: a board's UART.
pub trait Console {
    fn putc(&mut self, c: u8);

    fn puts(&mut self, s: &str) {
        for &c in s.as_bytes() {
            self.putc(c);
        }
    }

    /// A decimal number, without core::fmt (which would cost kilobytes of flash).
    fn putd(&mut self, value: i32) {
        if value < 0 {
            self.putc(b'-');
        }
        // Digits from the most significant one, without an array (no bounds checks, no panics).
        let v = value.unsigned_abs();
        let mut div = 1u32;
        while v / div >= 10 {
            div *= 10;
        }
        loop {
            self.putc(b'0' + (v / div % 10) as u8);
            if div == 1 {
                break;
            }
            div /= 10;
        }
    }
}

/// One task: a name and one slice of work at a time.
pub trait Task {
    fn name(&self) -> &'static str;
    fn step(&mut self, console: &mut dyn Console) -> Status;
}

/// Up to N tasks, run round-robin.
pub struct Scheduler<'a, const N: usize> {
    tasks: [Option<&'a mut dyn Task>; N],
    count: usize,
}

impl<'a, const N: usize> Default for Scheduler<'a, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a, const N: usize> Scheduler<'a, N> {
    pub const fn new() -> Self {
        Self { tasks: [const { None }; N], count: 0 }
    }

    /// Adds a task; gives it back when the table is full.
    pub fn spawn(&mut self, task: &'a mut dyn Task) -> Result<usize, &'a mut dyn Task> {
        match self.tasks.get_mut(self.count) {
            Some(slot) => {
                *slot = Some(task);
                self.count += 1;
                Ok(self.count - 1)
            }
            None => Err(task),
        }
    }

    /// Runs the tasks round-robin until all are done; returns how many slices ran.
    pub fn run(&mut self, console: &mut dyn Console) -> u32 {
        let mut slices = 0;
        let mut live = self.count;
        let mut done = [false; N];
        while live > 0 {
            // Iterators rather than indexing: no bounds checks, so no panic paths (and no core::fmt).
            for (slot, done) in self.tasks.iter_mut().zip(done.iter_mut()) {
                let Some(task) = slot else { continue };
                if *done {
                    continue;
                }
                slices += 1;
                if task.step(console) == Status::Done {
                    *done = true;
                    live -= 1;
                }
            }
        }
        slices
    }
}
