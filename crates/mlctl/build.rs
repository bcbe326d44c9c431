//! Links the mlctl executables with packed relative relocations (DT_RELR) where the C library
//! loads them. A position-independent executable's ~79,000 relative relocations are then an
//! 18 KB bitmap instead of a 1.9 MB table that the dynamic loader reads at every start: a third
//! less CPU time to start any mlctl process, the reaper of every run included (BENCHMARKS.md).
//!
//! glibc loads such executables since 2.36, and the linker marks them as needing it (the
//! `GLIBC_ABI_DT_RELR` version), so an older glibc refuses them with a clear error rather than
//! running them wrongly. The flag is therefore only given when building for this machine itself,
//! on x86-64 Linux with glibc 2.36 or later (GNU ld 2.38 and lld 15 know it).

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let for_this_machine = var("HOST") == var("TARGET")
        && var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ENV") == "gnu"
        && var("CARGO_CFG_TARGET_ARCH") == "x86_64";
    if for_this_machine && glibc_minor().is_some_and(|minor| minor >= 36) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// The minor version of this machine's glibc, from `getconf GNU_LIBC_VERSION` ("glibc 2.36").
fn glibc_minor() -> Option<u32> {
    let out = Command::new("getconf")
        .arg("GNU_LIBC_VERSION")
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    text.trim()
        .strip_prefix("glibc 2.")?
        .split('.')
        .next()?
        .parse()
        .ok()
}
