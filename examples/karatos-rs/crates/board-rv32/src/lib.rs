//! QEMU riscv virt (RV32IMAC, `-bios none`): the entry at 0x80000000, a trap handler, the 16550
//! UART and the exit through RISC-V semihosting. `_start` sets the stack, clears .bss and calls the
//! app's `karatos_main` (`#[unsafe(no_mangle)] extern "C" fn karatos_main() -> !`).
//! Everything is behind `target_arch = "riscv32"`, so the workspace still checks on other targets.
#![no_std]

#[cfg(target_arch = "riscv32")]
mod imp {
    use core::arch::global_asm;

    /// The name the console prints for this board.
    pub const TARGET: &str = "rv32imac";

    /// The transmit register of the 16550 UART (QEMU needs no setup).
    const UART_THR: *mut u8 = 0x1000_0000 as *mut u8;
    /// The virt machine's test device: 0x5555 ends QEMU with 0, (code << 16) | 0x3333 with code.
    const TEST_DEVICE: *mut u32 = 0x0010_0000 as *mut u32;

    pub fn putc(c: u8) {
        // SAFETY: a device register that exists on this machine.
        unsafe { UART_THR.write_volatile(c) }
    }

    unsafe extern "C" {
        /// The semihosting trap (below): op in a0, its argument block in a1.
        fn karatos_semihost(op: u32, arg: *const u32) -> u32;
    }

    /// Ends the emulator with `code` through semihosting SYS_EXIT_EXTENDED (0x20): a1 points at
    /// {ADP_Stopped_ApplicationExit, code}, which passes the real code through on 32-bit targets.
    pub fn exit(code: i32) -> ! {
        let block = [0x20026u32, code as u32];
        // SAFETY: the semihosting call only reads `block`.
        unsafe { karatos_semihost(0x20, block.as_ptr()) };
        test_device_exit(code)
    }

    fn test_device_exit(code: i32) -> ! {
        let value = if code == 0 { 0x5555 } else { ((code as u32) << 16) | 0x3333 };
        // SAFETY: a device register that exists on this machine.
        unsafe { TEST_DEVICE.write_volatile(value) };
        loop {
            core::hint::spin_loop();
        }
    }

    /// Any trap: say so (the farm's fail_on catches it) and end the run through the test device
    /// (semihosting itself traps here when QEMU runs without it).
    #[unsafe(no_mangle)]
    extern "C" fn karatos_fault() -> ! {
        for &c in b"FAIL: unexpected trap\n" {
            putc(c);
        }
        test_device_exit(1)
    }

    global_asm!(
        ".section .text.start, \"ax\", @progbits",
        ".globl _start",
        "_start:",
        "  la sp, _estack",
        "  la t0, karatos_trap",
        ".option push",
        ".option arch, +zicsr",
        "  csrw mtvec, t0",
        ".option pop",
        "  la t0, _sbss",
        "  la t1, _ebss",
        "1:",
        "  bgeu t0, t1, 2f",
        "  sw zero, 0(t0)",
        "  addi t0, t0, 4",
        "  j 1b",
        "2:",
        "  call karatos_main",
        "3:",
        "  j 3b",
        "",
        ".section .text.karatos_trap, \"ax\", @progbits",
        ".balign 4",
        "karatos_trap:",
        "  la sp, _estack",
        "  call karatos_fault",
        "",
        // The semihosting trap: these three instructions, uncompressed and in one aligned block.
        ".section .text.karatos_semihost, \"ax\", @progbits",
        ".globl karatos_semihost",
        ".balign 16",
        ".option push",
        ".option norvc",
        "karatos_semihost:",
        "  slli x0, x0, 0x1f",
        "  ebreak",
        "  srai x0, x0, 7",
        "  ret",
        ".option pop",
    );
}

#[cfg(target_arch = "riscv32")]
pub use imp::*;
