//! A run killed with SIGKILL anywhere — mid-step, mid-write of a record, mid-write of a
//! checkpoint, between epochs, before the summary — and resumed reaches exactly the records of
//! an uninterrupted run (timing aside). The binary halts itself at a named point
//! (`ADAEXP_HALT_AT`, see src/cli/halt.rs) so that each kill lands where the test says.
#![cfg(unix)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn args(out: &str, resume: bool) -> Vec<String> {
    let mut args: Vec<String> = [
        "run",
        "tiny.toml",
        "--data",
        "cifar",
        "--backend",
        "cpu",
        "--out",
        out,
        "--no-plot",
    ]
    .map(String::from)
    .to_vec();
    if resume {
        args.push("--resume".into());
    }
    args
}

/// The records of an uninterrupted run (into `straight/`), timing aside.
fn straight_run(dir: &Path) -> Vec<serde_json::Value> {
    ok(&adaexp(
        &args("straight", false)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        dir,
    ));
    untimed(&dir.join("straight/seed-0.jsonl"))
}

/// Runs until the halt point, then kills the process with SIGKILL.
fn run_and_kill(dir: &Path, out: &str, point: &str) {
    let marker = dir.join(format!("{out}.halted"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_adaexp"))
        .args(args(out, false))
        .current_dir(dir)
        .env("ADAEXP_HALT_AT", point)
        .env("ADAEXP_HALT_FILE", &marker)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !marker.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{point}: the run ended ({status}) without reaching its halt point");
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "{point}: not reached"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

#[test]
fn killed_anywhere_and_resumed_equals_uninterrupted() {
    let dir = tiny_cifar_dir(3);
    let refs = |a: &[String]| a.iter().map(String::as_str).collect::<Vec<_>>().join(" ");
    let straight = straight_run(dir.path());
    // 1 header, then per epoch 4 steps × 2 arms and 2 epoch records: 31 lines.
    assert_eq!(straight.len(), 31);

    // Each point's passage count, spread over the three epochs (records: header = 1,
    // epoch 1 = 2..=11, epoch 2 = 12..=21, epoch 3 = 22..=31).
    let points = [
        "record-write:1",     // the header half written
        "step-computed:2",    // epoch 1: a step done, its records not written
        "record-write:6",     // epoch 1: half a step record
        "record-write:11",    // epoch 1: half its last epoch record
        "checkpoint-write:1", // epoch 1's checkpoint half written
        "step-written:5",     // epoch 2's first step written, not synced
        "record-write:16",    // epoch 2: half a step record
        "checkpoint-write:2", // epoch 2's checkpoint half written
        "step-computed:10",   // epoch 3: a step done, its records not written
        "summary:1",          // training done, summary not yet written
    ];
    for (i, point) in points.iter().enumerate() {
        let out = format!("killed-{i}");
        run_and_kill(dir.path(), &out, point);
        let resumed = args(&out, true);
        let output = adaexp(
            &resumed.iter().map(String::as_str).collect::<Vec<_>>(),
            dir.path(),
        );
        ok(&output);
        assert_eq!(
            untimed(&dir.path().join(format!("{out}/seed-0.jsonl"))),
            straight,
            "killed at {point}, resumed with `{}`",
            refs(&resumed)
        );
        assert!(
            dir.path().join(format!("{out}/summary.json")).is_file(),
            "{point}: no summary after resuming"
        );
        // A checkpoint's half-written temp file does not outlive the resume.
        let left: Vec<String> = std::fs::read_dir(dir.path().join(&out))
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|name| name.starts_with(".adaexp-"))
            .collect();
        assert!(left.is_empty(), "{point}: left behind {left:?}");
    }
}

/// Asked to stop (Slurm's SIGTERM on preemption, SIGUSR1 before a time limit, Ctrl-C's
/// SIGINT) mid-epoch, a run writes the queued step's records and a checkpoint at that step,
/// exits with 75, and `--resume` continues from that very step to the uninterrupted records.
#[test]
fn a_signal_mid_epoch_checkpoints_at_that_step_and_resume_equals_uninterrupted() {
    let dir = tiny_cifar_dir(3);
    let straight = straight_run(dir.path());
    // 4 steps per epoch: the signal finds the run after step 2 of epoch 1, after the first
    // step of epoch 2, and after step 3 of epoch 3.
    for (signal, passage, step) in [("TERM", 2, 2), ("USR1", 5, 5), ("INT", 11, 11)] {
        let out = format!("signalled-{signal}");
        let marker = dir.path().join(format!("{out}.waiting"));
        let child = Command::new(env!("CARGO_BIN_EXE_adaexp"))
            .args(args(&out, false))
            .current_dir(dir.path())
            .env("ADAEXP_HALT_AT", format!("step-written:{passage}"))
            .env("ADAEXP_HALT_UNTIL_SIGNAL", "1")
            .env("ADAEXP_HALT_FILE", &marker)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while !marker.exists() {
            assert!(
                started.elapsed() < Duration::from_secs(300),
                "{signal}: not reached"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let sent = Command::new("kill")
            .args(["-s", signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(75), "{signal}: {stderr}");
        assert!(
            stderr.contains(&format!("stopped on request at step {step} of 12")),
            "{signal}: {stderr}"
        );
        // Everything up to that step is on the disk (header, 2 arms per step, epoch records),
        // nothing after it.
        let written = untimed(&dir.path().join(format!("{out}/seed-0.jsonl")));
        let epochs_done = (step / 4) as usize;
        assert_eq!(
            written.len(),
            1 + 2 * step as usize + 2 * epochs_done,
            "{signal}"
        );
        assert_eq!(written[..], straight[..written.len()], "{signal}");

        let resumed = adaexp(
            &args(&out, true)
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            dir.path(),
        );
        let stdout = ok(&resumed);
        if step % 4 != 0 {
            assert!(
                stdout.contains(&format!("after step {step} (batch {} of 4)", step % 4)),
                "{signal}: {stdout}"
            );
        }
        assert_eq!(
            untimed(&dir.path().join(format!("{out}/seed-0.jsonl"))),
            straight,
            "{signal}: resumed records differ from the uninterrupted run"
        );
    }
}
