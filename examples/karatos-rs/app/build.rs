//! Links with the board's linker script: the board crate's build script put it in its OUT_DIR as
//! karatos.ld and that folder on the search path; ld looks a -T script up there.
fn main() {
    println!("cargo:rustc-link-arg-bins=-Tkaratos.ld");
    println!("cargo:rustc-link-arg-bins=--build-id=none");
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("riscv32") {
        // One RAM region holds code and data: that is intended.
        println!("cargo:rustc-link-arg-bins=--no-warn-rwx-segments");
    }
    // Any rerun-if directive replaces cargo's default (rerun when any file of the package has a
    // newer mtime, which a target/ restored from a cache always sees). This script reads no file
    // and no variable of the caller's: it reruns only when it is rebuilt (its source is compared by
    // content, -Zchecksum-freshness).
    println!("cargo:rerun-if-env-changed=KARATOS_APP_BUILD");
}
