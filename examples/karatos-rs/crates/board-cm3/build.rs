//! Puts this board's linker script (link.x) in OUT_DIR as karatos.ld and OUT_DIR on the linker's
//! search path of whatever links against this crate (the app passes -Tkaratos.ld). Cargo rewrites
//! OUT_DIR in a cached build-script output when target/ moves, so a restored target/ still links.
//!
//! link.x is compiled into this program (include_bytes!) instead of being watched with
//! `rerun-if-changed`: cargo compares rerun-if-changed files by mtime, which a target/ restored from
//! a cache (sources written after it) always fails, while rustc's dep-info of this script is
//! compared by content (-Zchecksum-freshness). So an edit of link.x rebuilds and reruns the script;
//! a checkout that only touches it does not.
use std::{env, fs, path::PathBuf};

const LINK_X: &[u8] = include_bytes!("link.x");

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::write(out.join("karatos.ld"), LINK_X).expect("writing karatos.ld");
    println!("cargo:rustc-link-search={}", out.display());
    // Any rerun-if directive replaces cargo's default (rerun when any file of the package has a
    // newer mtime). This script reads no environment variable: it reruns only when rebuilt.
    println!("cargo:rerun-if-env-changed=KARATOS_BOARD_BUILD");
}
