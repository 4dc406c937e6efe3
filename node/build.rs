//! Builds the web page's verifier (`node/web/wasm`) for `wasm32-unknown-unknown` with a
//! cargo of its own, into the `wasm` folder of the target directory, and leaves the module
//! in `OUT_DIR/acta_web.wasm` for `src/rpc/web.rs` to compile in. The page's verifier is
//! thus the ledger and contracts code of this very build, never a stale copy.
//!
//! Without the wasm32 target (`scripts/setup` adds it) the node still builds, with an empty
//! module and a warning: the page then says its verifier is missing.

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
    let module = match build(&workspace, &out) {
        Ok(bytes) => bytes,
        Err(why) => {
            println!("cargo:warning=the web page's verifier is not built: {why}");
            Vec::new()
        }
    };
    std::fs::write(&dest, module).expect("OUT_DIR is writable");
}

fn build(workspace: &Path, out: &Path) -> Result<Vec<u8>, String> {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let libdir = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", WASM_TARGET])
        .output()
        .map_err(|e| format!("running rustc: {e}"))?;
    let libdir = String::from_utf8_lossy(&libdir.stdout).trim().to_string();
    if libdir.is_empty() || !Path::new(&libdir).is_dir() {
        return Err(format!(
            "the Rust target {WASM_TARGET} is not installed (rustup target add {WASM_TARGET}, as scripts/setup does)"
        ));
    }
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
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_RUSTFLAGS",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd
        .status()
        .map_err(|e| format!("running cargo for {WASM_TARGET}: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build for {WASM_TARGET} failed ({status})"));
    }
    let module = target_dir.join(WASM_TARGET).join("wasm/acta_web_wasm.wasm");
    std::fs::read(&module).map_err(|e| format!("reading {}: {e}", module.display()))
}
