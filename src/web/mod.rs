//! The browser lab (wasm32): Leptos components over the same specs, data loader, models and
//! training session as the native runner.

mod app;
mod backend;
mod chart;
mod controls;
mod export;
mod files;
mod panels;
mod run;

/// Mounts the lab into the page's body.
pub fn mount() {
    std::panic::set_hook(Box::new(|info| {
        console_error_panic_hook::hook(info);
        // A panic leaves the wasm module unusable: say so on the page instead of freezing silently.
        if let Some(element) = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.get_element_by_id("fatal"))
        {
            element.set_text_content(Some(&format!(
                "The lab stopped: {info}. Reload the page to start again."
            )));
        }
    }));
    leptos::mount::mount_to_body(app::App);
}
