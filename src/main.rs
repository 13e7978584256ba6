#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    adaexp::cli::main()
}

// The browser lab mounts here (a later issue); the library already builds for wasm32.
#[cfg(target_arch = "wasm32")]
fn main() {}
