//! Stopping cleanly when asked: Slurm sends SIGTERM when it preempts or requeues a job (and
//! SIGUSR1 shortly before a time limit, when the job asked for `--signal`), a person presses
//! Ctrl-C. The run finishes the step in hand, checkpoints there, flushes its records and exits
//! with `EXIT_INTERRUPTED`; `--resume` continues from that step. A second Ctrl-C exits at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use anyhow::Context;

/// The exit status of a run that stopped on request with its checkpoint written (BSD's
/// EX_TEMPFAIL: try again later). The Slurm job script requeues a task that exits with it.
pub const EXIT_INTERRUPTED: u8 = 75;

fn flag() -> &'static Arc<AtomicBool> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    FLAG.get_or_init(|| Arc::new(AtomicBool::new(false)))
}

/// Catches the signals from now on (once per process).
pub fn install() -> anyhow::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    use signal_hook::flag;
    static INSTALLED: OnceLock<()> = OnceLock::new();
    if INSTALLED.get().is_some() {
        return Ok(());
    }
    let requested = flag();
    // A second Ctrl-C while the first is being honoured means "now": exit like an unhandled one.
    flag::register_conditional_shutdown(SIGINT, 130, Arc::clone(requested))
        .context("cannot catch SIGINT")?;
    flag::register(SIGINT, Arc::clone(requested)).context("cannot catch SIGINT")?;
    flag::register(SIGTERM, Arc::clone(requested)).context("cannot catch SIGTERM")?;
    #[cfg(unix)]
    flag::register(signal_hook::consts::SIGUSR1, Arc::clone(requested))
        .context("cannot catch SIGUSR1")?;
    let _ = INSTALLED.set(());
    Ok(())
}

/// Whether a stop was asked for.
pub fn requested() -> bool {
    flag().load(Ordering::Relaxed)
}

/// The error a run returns when it stopped on request; `main` turns it into `EXIT_INTERRUPTED`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Interrupted(pub String);
