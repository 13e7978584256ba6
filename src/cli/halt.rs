//! Halt points for the kill test (tests/kill.rs): with `ADAEXP_HALT_AT=POINT:N` the process
//! stops the N-th time it passes POINT — mid-write where the point is a write — creates the
//! file named by `ADAEXP_HALT_FILE` and waits there to be killed with SIGKILL. The test then
//! knows exactly where the run died. Without the variable every point is one relaxed load.
//! (`ADAEXP_HALT_UNTIL_SIGNAL`: see `point`.)

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Point {
    /// A batch's records are computed (all arms stepped) but not yet written.
    StepComputed,
    /// A batch's records are written (not yet synced).
    StepWritten,
    /// Half of one record line is in the result file.
    RecordWrite,
    /// Part of a checkpoint is in its temp file.
    CheckpointWrite,
    /// Training is done; the summary is not yet written.
    Summary,
}

impl Point {
    const ALL: [(Point, &'static str); 5] = [
        (Point::StepComputed, "step-computed"),
        (Point::StepWritten, "step-written"),
        (Point::RecordWrite, "record-write"),
        (Point::CheckpointWrite, "checkpoint-write"),
        (Point::Summary, "summary"),
    ];
}

struct Target {
    point: Point,
    passage: u64,
    passed: AtomicU64,
}

fn target() -> Option<&'static Target> {
    static TARGET: OnceLock<Option<Target>> = OnceLock::new();
    TARGET
        .get_or_init(|| {
            let spec = std::env::var("ADAEXP_HALT_AT").ok()?;
            let (name, passage) = spec.split_once(':')?;
            let point = Point::ALL.iter().find(|(_, n)| *n == name)?.0;
            Some(Target {
                point,
                passage: passage.parse().ok()?,
                passed: AtomicU64::new(0),
            })
        })
        .as_ref()
}

/// Whether this passage of `point` is the one to halt at.
pub fn reached(point: Point) -> bool {
    target().is_some_and(|t| {
        t.point == point && t.passed.fetch_add(1, Ordering::Relaxed) + 1 == t.passage
    })
}

/// Signals the test and waits to be killed.
pub fn halt() -> ! {
    if let Some(file) = std::env::var_os("ADAEXP_HALT_FILE") {
        let _ = std::fs::write(file, b"halted");
    }
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}

/// Halts here when this passage is the one. With `ADAEXP_HALT_UNTIL_SIGNAL` set the process
/// waits there for SIGTERM/SIGINT/SIGUSR1 instead, then carries on: a test knows exactly
/// where the signal found the run.
pub fn point(point: Point) {
    if reached(point) {
        if std::env::var_os("ADAEXP_HALT_UNTIL_SIGNAL").is_none() {
            halt();
        }
        if let Some(file) = std::env::var_os("ADAEXP_HALT_FILE") {
            let _ = std::fs::write(file, b"waiting for a signal");
        }
        while !super::interrupt::requested() {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}
