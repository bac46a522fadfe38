#!/bin/sh
# Boots a karatos-rs image in QEMU and checks what it prints and how it exits.
#   scripts/qemu-test.sh TARGET ELF [TIMEOUT_SECONDS]
# Exit status: the firmware's own exit code, 1 when the success line is missing, 124 on a timeout.
set -eu
target=$1
elf=$2
limit=${3:-30}
case "$target" in
  cortex-m3) machine="qemu-system-arm -M lm3s6965evb" ;;
  rv32imac) machine="qemu-system-riscv32 -M virt -bios none" ;;
  *) echo "unknown target $target" >&2; exit 2 ;;
esac
log=$(mktemp)
trap 'rm -f "$log" "$log.err" "$log.code"' EXIT
# The output is shown live (tee) while QEMU's own exit status is kept for the verdict; a hung guest
# is ended by timeout (exit 124).
# shellcheck disable=SC2086
{ timeout -k 2 "$limit" $machine -nographic -monitor none -serial stdio \
    -semihosting-config enable=on,target=native -kernel "$elf" \
    2>"$log.err" </dev/null && echo 0 >"$log.code" || echo $? >"$log.code"; } | tee "$log"
code=$(cat "$log.code")
# lm3s6965evb prints a harmless "Timer with period zero" warning; show anything else.
grep -v "Timer with period zero" "$log.err" >&2 || true
if [ "$code" -eq 124 ]; then
  echo "firmware timed out after ${limit}s" >&2
  exit 124
fi
if [ "$code" -ne 0 ]; then
  echo "firmware exited with code $code" >&2
  exit "$code"
fi
if ! grep -q "KARATOS OK: all tasks done" "$log"; then
  echo "firmware exited 0 but never printed its success line" >&2
  exit 1
fi
if grep -q -e "FAIL:" -e "panic" "$log"; then
  echo "firmware printed a failure line" >&2
  exit 1
fi
echo "test passed: $target $elf"
