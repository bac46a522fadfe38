#!/bin/sh
# Builds the karatos-rs firmware for one cell of the matrix.
#   scripts/build.sh cortex-m3|rv32imac debug|release
# Output: out/TARGET-PROFILE/karatos.elf, karatos.bin (raw image) and size.txt.
# Environment: KARATOS_FAULT=fail|hang builds a faulty firmware (for testing the farm);
# KARATOS_CARGO (default /usr/bin/cargo) and KARATOS_RUSTC (default /usr/bin/rustc) pick another
# toolchain (one that can build core for these targets: Debian's rustc-web/cargo-web 1.96).
#
# Cargo's home is .cargo-home/ and its build folder target/, both in the example's folder: the farm
# runs steps with HOME set to the work directory, and caches both folders between runs.
set -eu
cd "$(dirname "$0")/.."
target=${1:-cortex-m3}
profile=${2:-debug}

case "$target" in
  cortex-m3) triple=thumbv7m-none-eabi; cross=arm-none-eabi- ;;
  rv32imac) triple=riscv32imac-unknown-none-elf; cross=riscv64-unknown-elf- ;;
  *) echo "error: TARGET must be cortex-m3 or rv32imac, not '$target'" >&2; exit 2 ;;
esac
case "$profile" in
  debug) cargo_profile=dev ;;
  release) cargo_profile=release ;;
  *) echo "error: PROFILE must be debug or release, not '$profile'" >&2; exit 2 ;;
esac
features=
case "${KARATOS_FAULT:-}" in
  "") ;;
  fail|hang) features="--features fault-$KARATOS_FAULT" ;;
  *) echo "error: KARATOS_FAULT must be fail or hang, not '$KARATOS_FAULT'" >&2; exit 2 ;;
esac

# Debian's toolchain (rustc-web, cargo-web, rust-web-src), never a rustup proxy: rustup's toolchains
# have no rust-src and no embedded targets. /usr/bin goes first on PATH because cargo runs `rustc`
# (and build scripts) from PATH.
PATH=/usr/bin:/bin:$PATH
cargo=${KARATOS_CARGO:-/usr/bin/cargo}
RUSTC=${KARATOS_RUSTC:-/usr/bin/rustc}
CARGO_HOME=$PWD/.cargo-home
# -Zbuild-std and checksum-freshness (.cargo/config.toml) are unstable cargo features.
RUSTC_BOOTSTRAP=1
export PATH RUSTC CARGO_HOME RUSTC_BOOTSTRAP
# Nothing of the caller's may change the build (or the fingerprints of a cached target/).
unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_RUSTFLAGS CARGO_TARGET_DIR CARGO_BUILD_TARGET_DIR \
  RUSTUP_TOOLCHAIN CARGO_INCREMENTAL 2>/dev/null || true

# A target/ restored from a cache (or copied with cp -r) has its files' mtimes in whatever order
# they were written. Cargo still compares a dependency's output mtime with its dependent's ("the
# dependency `compiler_builtins` was rebuilt") and would rebuild compiler_builtins and the whole
# workspace. Every freshness check this build relies on is by content (-Zchecksum-freshness; the
# build scripts watch no file), so give target/ one mtime, now: only edited crates rebuild.
if [ -d target ]; then
  now=$(date +%s)
  find target -exec touch -h -d "@$now" {} +
fi

# shellcheck disable=SC2086
"$cargo" build --offline --locked -p app --bin karatos --target "$triple" --profile "$cargo_profile" $features

out=out/$target-$profile
mkdir -p "$out"
cp "target/$triple/$profile/karatos" "$out/karatos.elf"
"${cross}objcopy" -O binary "$out/karatos.elf" "$out/karatos.bin"
"${cross}size" "$out/karatos.elf" | tee "$out/size.txt"
echo "image: $(stat -c %s "$out/karatos.bin") bytes" | tee -a "$out/size.txt"
