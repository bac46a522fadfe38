//! karatos-rs: three tasks share the CPU cooperatively (sched), then the firmware reports on the
//! board's UART and ends the emulator with its exit code. The board comes from the target:
//! thumbv7m-none-eabi -> board-cm3, riscv32imac-unknown-none-elf -> board-rv32.
//! Faults for testing the farm: feature `fault-fail` (a wrong sum, exit 3), `fault-hang`.
#![no_std]
#![no_main]

use core::cell::Cell;

use sched::{Console, Scheduler, Status, Task};

#[cfg(target_arch = "arm")]
use board_cm3 as board;
#[cfg(target_arch = "riscv32")]
use board_rv32 as board;

const PROFILE: &str = if cfg!(debug_assertions) { "debug" } else { "release" };

/// The board's UART as the scheduler's console.
struct Uart;

impl Console for Uart {
    fn putc(&mut self, c: u8) {
        board::putc(c);
    }
}

/// Prints a tick each slice, `limit` times.
struct Blink {
    counter: i32,
    limit: i32,
}

impl Task for Blink {
    fn name(&self) -> &'static str {
        "blink"
    }

    fn step(&mut self, con: &mut dyn Console) -> Status {
        con.puts("[blink] tick ");
        con.putd(self.counter);
        con.puts("\n");
        self.counter += 1;
        if self.counter == self.limit { Status::Done } else { Status::Ready }
    }
}

/// Adds 0, 1, ..., limit-1 into `sum`, one number a slice.
struct Count<'a> {
    sum: &'a Cell<i32>,
    counter: i32,
    limit: i32,
}

impl Task for Count<'_> {
    fn name(&self) -> &'static str {
        "count"
    }

    fn step(&mut self, _con: &mut dyn Console) -> Status {
        self.sum.set(self.sum.get() + self.counter);
        self.counter += 1;
        if self.counter == self.limit { Status::Done } else { Status::Ready }
    }
}

/// Waits `limit` slices, then prints the sum.
struct Report<'a> {
    sum: &'a Cell<i32>,
    counter: i32,
    limit: i32,
}

impl Task for Report<'_> {
    fn name(&self) -> &'static str {
        "report"
    }

    fn step(&mut self, con: &mut dyn Console) -> Status {
        self.counter += 1;
        if self.counter < self.limit {
            return Status::Ready;
        }
        con.puts("[report] sum=");
        con.putd(self.sum.get());
        con.puts("\n");
        Status::Done
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn karatos_main() -> ! {
    let mut con = Uart;
    con.puts("karatos-rs ");
    con.puts(board::TARGET);
    con.puts(" ");
    con.puts(PROFILE);
    con.puts(" booting\n");

    let sum = Cell::new(0);
    let mut blink = Blink { counter: 0, limit: 3 };
    let mut count = Count { sum: &sum, counter: 0, limit: 10 };
    let mut report = Report { sum: &sum, counter: 0, limit: 12 };
    let mut scheduler: Scheduler<'_, 4> = Scheduler::new();
    for task in [&mut blink as &mut dyn Task, &mut count, &mut report] {
        if let Err(task) = scheduler.spawn(task) {
            con.puts("FAIL: no room for task ");
            con.puts(task.name());
            con.puts("\n");
            board::exit(2);
        }
    }
    let slices = scheduler.run(&mut con);
    con.puts("scheduler ran ");
    con.putd(slices as i32);
    con.puts(" slices\n");

    if cfg!(feature = "fault-hang") {
        con.puts("hanging on purpose\n");
        loop {
            core::hint::spin_loop();
        }
    }
    let expected = if cfg!(feature = "fault-fail") { 46 } else { 45 };
    if sum.get() != expected {
        con.puts("FAIL: sum is ");
        con.putd(sum.get());
        con.puts(", expected ");
        con.putd(expected);
        con.puts("\n");
        board::exit(3);
    }
    con.puts("KARATOS OK: all tasks done\n");
    board::exit(0)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    let mut con = Uart;
    con.puts("panic");
    if let Some(location) = info.location() {
        con.puts(" at ");
        con.puts(location.file());
        con.puts(":");
        con.putd(location.line() as i32);
    }
    con.puts("\n");
    board::exit(101)
}
