#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    adaexp::cli::main()
}

#[cfg(target_arch = "wasm32")]
fn main() {
    adaexp::web::mount();
}
