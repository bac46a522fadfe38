//! TI LM3S6965 (QEMU lm3s6965evb): the vector table and reset entry, UART0 output and the exit
//! through ARM semihosting. The reset handler copies .data, clears .bss and calls the app's
//! `karatos_main` (`#[unsafe(no_mangle)] extern "C" fn karatos_main() -> !`).
//! Everything is behind `target_arch = "arm"`, so the workspace still checks on other targets.
#![no_std]

#[cfg(target_arch = "arm")]
mod imp {
    use core::arch::{asm, global_asm};

    /// The name the console prints for this board.
    pub const TARGET: &str = "cortex-m3";

    /// UART0 is a PL011 whose data register needs no setup in QEMU.
    const UART0_DR: *mut u32 = 0x4000_C000 as *mut u32;

    pub fn putc(c: u8) {
        // SAFETY: a device register that exists on this machine.
        unsafe { UART0_DR.write_volatile(u32::from(c)) }
    }

    /// Ends the emulator with `code` through semihosting SYS_EXIT_EXTENDED (0x20): r1 points at
    /// {ADP_Stopped_ApplicationExit, code}, which passes the real code through on 32-bit targets.
    pub fn exit(code: i32) -> ! {
        let block = [0x20026u32, code as u32];
        // SAFETY: the semihosting call only reads `block`.
        unsafe {
            asm!("bkpt 0xAB", inout("r0") 0x20u32 => _, in("r1") block.as_ptr(), options(nostack));
        }
        loop {
            core::hint::spin_loop();
        }
    }

    /// Any exception but reset: say so (the farm's fail_on catches it) and end the run.
    #[unsafe(no_mangle)]
    extern "C" fn karatos_fault() -> ! {
        for &c in b"FAIL: unexpected exception\n" {
            putc(c);
        }
        exit(1)
    }

    // The vector table: initial stack pointer, reset, then the 14 system exceptions.
    // Reset runs before any Rust code can assume initialised statics, so it is written in assembly.
    global_asm!(
        ".section .vectors, \"a\", %progbits",
        ".p2align 2",
        ".globl __vectors",
        "__vectors:",
        ".word _estack",
        ".word karatos_reset",
        ".word karatos_fault, karatos_fault, karatos_fault, karatos_fault, karatos_fault", // NMI..UsageFault
        ".word 0, 0, 0, 0",
        ".word karatos_fault, karatos_fault, 0, karatos_fault, karatos_fault", // SVC, DebugMon, -, PendSV, SysTick
        "",
        ".section .text.karatos_reset, \"ax\", %progbits",
        ".globl karatos_reset",
        ".type karatos_reset, %function",
        ".thumb_func",
        "karatos_reset:",
        "  ldr r0, =_sdata",
        "  ldr r1, =_edata",
        "  ldr r2, =_sidata",
        "1:",
        "  cmp r0, r1",
        "  bhs 2f",
        "  ldr r3, [r2], #4",
        "  str r3, [r0], #4",
        "  b 1b",
        "2:",
        "  ldr r0, =_sbss",
        "  ldr r1, =_ebss",
        "  movs r2, #0",
        "3:",
        "  cmp r0, r1",
        "  bhs 4f",
        "  str r2, [r0], #4",
        "  b 3b",
        "4:",
        "  bl karatos_main",
        "5:",
        "  b 5b",
        ".ltorg",
        ".size karatos_reset, . - karatos_reset",
    );
}

#[cfg(target_arch = "arm")]
pub use imp::*;
