//! The browser lab's page (wasm32): Leptos components over the same settings, specs, schedules
//! and records as the native runner. Training runs in the lab's worker (`crate::worker`); this
//! side links no Burn, so the page loads fast and never freezes.

mod app;
mod chart;
mod controls;
mod export;
mod lab_worker;
mod outcome;
mod panels;
mod run;
mod trajectories;

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
