//! The browser lab's Web Worker: trunk builds this binary beside the page's (`index.html`), and
//! the page starts it to train off its main thread (`adaexp::worker`).

#[cfg(target_arch = "wasm32")]
fn main() {
    adaexp::worker::start();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    eprintln!(
        "lab-worker runs only inside the browser lab (trunk builds it for the page; see the \
         README, \"The browser lab\"). Natively, run `adaexp`."
    );
    std::process::ExitCode::from(2)
}
