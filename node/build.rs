//! Builds the web page's verifier (`node/web/wasm`) for `wasm32-unknown-unknown` with a
//! cargo of its own, into the `wasm` folder of the target directory, and leaves the module
//! in `OUT_DIR/acta_web.wasm` for `src/rpc/web.rs` to compile in. The page's verifier is
//! thus the ledger and contracts code of this very build, never a stale copy.
//!
//! Without the wasm32 target (`scripts/setup` adds it) the node still builds, with an empty
//! module and a warning: the page then says its verifier is missing (and node/tests/api.rs
//! fails). Any other failure of the module's build fails the node's.

use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
};

const WASM_TARGET: &str = "wasm32-unknown-unknown";

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let workspace = manifest
        .parent()
        .expect("node/ is in the workspace")
        .to_path_buf();
    for input in [
        "node/web/wasm",
        "ledger/src",
        "ledger/Cargo.toml",
        "contracts/src",
        "contracts/Cargo.toml",
        "Cargo.toml",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", workspace.join(input).display());
    }
    let dest = out.join("acta_web.wasm");
    let module = if target_installed() {
        // Any other failure stops the build: a node must not ship without its verifier
        // because a dependency failed to compile.
        build(&workspace, &out).unwrap_or_else(|why| panic!("the web page's verifier: {why}"))
    } else {
        println!(
            "cargo:warning=the web page's verifier is not built: the Rust target {WASM_TARGET} is not installed (rustup target add {WASM_TARGET}, as scripts/setup does)"
        );
        Vec::new()
    };
    std::fs::write(&dest, module).expect("OUT_DIR is writable");
}

/// Whether the wasm32 standard library is installed; the build runs again once it is.
fn target_installed() -> bool {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    if !sysroot.is_empty() {
        println!("cargo:rerun-if-changed={sysroot}/lib/rustlib");
    }
    Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", WASM_TARGET])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .is_some_and(|dir| !dir.is_empty() && Path::new(&dir).is_dir())
}

fn build(workspace: &Path, out: &Path) -> Result<Vec<u8>, String> {
    // The target directory holds a CACHEDIR.TAG at its root: the module's build goes in a
    // folder of its own there, kept between builds.
    let target_dir = out
        .ancestors()
        .find(|d| d.join("CACHEDIR.TAG").is_file())
        .map(|d| d.join("wasm"))
        .unwrap_or_else(|| out.join("wasm"));
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--locked", "--lib", "-p", "acta-web-wasm"])
        .args(["--profile", "wasm", "--target", WASM_TARGET])
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        // getrandom 0.4 reads randomness through the module's import (see the crate).
        .env(
            "CARGO_ENCODED_RUSTFLAGS",
            "--cfg=getrandom_backend=\"custom\"",
        );
    // What this build's cargo set for itself (a linter wrapper, flags, the target folder)
    // is not for the module's build.
    for var in [
        "RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_RUSTC_WRAPPER",
        "CARGO_BUILD_RUSTC_WORKSPACE_WRAPPER",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_TARGET_DIR",
        "CARGO_BUILD_RUSTFLAGS",
    ] {
        cmd.env_remove(var);
    }
    // Captured: cargo reads a build script's standard output as instructions.
    let done = cmd
        .output()
        .map_err(|e| format!("running cargo for {WASM_TARGET}: {e}"))?;
    if !done.status.success() {
        let stderr = String::from_utf8_lossy(&done.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!(
            "cargo build for {WASM_TARGET} failed ({}):\n{}",
            done.status,
            tail.join("\n")
        ));
    }
    let module = target_dir.join(WASM_TARGET).join("wasm/acta_web_wasm.wasm");
    std::fs::read(&module).map_err(|e| format!("reading {}: {e}", module.display()))
}
