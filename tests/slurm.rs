//! A sweep on a real (single-node) Slurm cluster: tests/slurm/run.sh starts one and runs this.
//! 2 seeds × 2 arms become a 4-task job array; one running task is requeued mid-run (Slurm
//! signals it, it checkpoints, it starts again and resumes); all finish; the merge job writes
//! the summary of 2 seeds × 2 arms; the requeued shard's records equal an uninterrupted run.
#![cfg(unix)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

fn slurm(program: &str, args: &[&str]) -> String {
    let output = Command::new(program).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Steps recorded so far in a shard folder's result file.
fn steps_recorded(shard: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(shard) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "jsonl"))
        .map(|e| {
            std::fs::read_to_string(e.path())
                .unwrap_or_default()
                .matches("\"type\":\"step\"")
                .count()
        })
        .sum()
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
#[ignore = "needs a Slurm cluster: run tests/slurm/run.sh"]
fn a_sweep_runs_as_a_job_array_survives_a_requeue_and_merges() {
    // 2000 images in batches of 25: 80 steps per epoch, time enough to requeue a task mid-run.
    let dir = tiny_fashion_dir(2000, 100, 2);
    let cwd = dir.path();
    let started = Instant::now();
    let submitted = ok(&adaexp(
        &[
            "sweep",
            "f.toml",
            "--out",
            "sweep",
            "--data",
            "fm",
            "--backend",
            "cpu",
            "--seeds",
            "0,1",
            "--cpus-per-task",
            "1",
            "--time",
            "00:20:00",
        ],
        cwd,
    ));
    println!("{submitted}");
    let job = submitted
        .split_whitespace()
        .skip_while(|w| *w != "array")
        .nth(1)
        .expect("a job id")
        .trim_end_matches(':')
        .to_owned();
    let sweep = cwd.join("sweep");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sweep.join("sweep.json")).unwrap()).unwrap();
    let shards: Vec<String> = manifest["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["dir"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(shards.len(), 4);

    // A task that is running and a good way from its end (160 steps per arm).
    let mut victim = None;
    wait_for(
        "a running task 20 steps in",
        Duration::from_secs(300),
        || {
            let running = slurm(
                "squeue",
                &["-h", "-r", "-j", &job, "-t", "RUNNING", "-o", "%K"],
            );
            victim = running
                .lines()
                .filter_map(|l| l.trim().parse::<usize>().ok())
                .find(|&i| (20..100).contains(&(steps_recorded(&sweep.join(&shards[i])) / 2)));
            victim.is_some()
        },
    );
    let victim = victim.unwrap();
    let before = steps_recorded(&sweep.join(&shards[victim])) / 2;
    println!("requeueing task {victim} after {before} steps");
    slurm("scontrol", &["requeue", &format!("{job}_{victim}")]);

    println!("requeued at {:.0} s", started.elapsed().as_secs_f64());
    // Slurm holds a requeued job back for a while before it may start again; the test need not
    // wait for that.
    let task = format!("{job}_{victim}");
    wait_for(
        "the requeued task to be pending",
        Duration::from_secs(120),
        || slurm("squeue", &["-h", "-j", &task, "-o", "%T"]).trim() == "PENDING",
    );
    slurm(
        "scontrol",
        &["update", &format!("JobId={task}"), "StartTime=now"],
    );
    wait_for("the array to finish", Duration::from_secs(900), || {
        slurm("squeue", &["-h", "-j", &job]).trim().is_empty()
    });
    println!("array done at {:.0} s", started.elapsed().as_secs_f64());
    wait_for("the merge job's summary", Duration::from_secs(300), || {
        sweep.join("summary.md").is_file()
    });

    let status = ok(&adaexp(&["sweep", "status", "sweep"], cwd));
    println!("{status}");
    assert!(status.contains("4 of 4 shards finished"), "{status}");
    let summary = std::fs::read_to_string(sweep.join("summary.md")).unwrap();
    println!("{summary}");
    for arm in ["SGDM", "AdaExp"] {
        let row = summary
            .lines()
            .find(|l| l.starts_with(&format!("| {arm} |")))
            .unwrap_or_else(|| panic!("no row for {arm}: {summary}"));
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        assert_eq!((cells[5], cells[6]), ("2", "2"), "2 seeds, 2 epochs: {row}");
    }
    assert!(!summary.contains("Not finished"), "{summary}");

    // The requeued task resumed from its checkpoint, not from the start.
    let log = std::fs::read_to_string(sweep.join(format!("logs/{job}_{victim}.out"))).unwrap();
    println!("log of task {victim}:\n{log}");
    assert!(log.contains("restart 1"), "{log}");
    assert!(log.contains("stopped on request at step"), "{log}");
    assert!(log.contains("seed") && log.contains("resuming"), "{log}");

    // Its records are those of an uninterrupted run of the same shard.
    let shard = &manifest["shards"][victim];
    let seed = shard["seed"].as_u64().unwrap().to_string();
    let arms = shard["arms"][0].as_str().unwrap().to_owned();
    ok(&adaexp(
        &[
            "run",
            "sweep/experiment.toml",
            "--seeds",
            &seed,
            "--arms",
            &arms,
            "--data",
            "fm",
            "--backend",
            "cpu",
            "--out",
            "straight",
            "--no-plot",
        ],
        cwd,
    ));
    let file = |folder: &Path| {
        std::fs::read_dir(folder)
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .unwrap()
    };
    let straight = untimed(&file(&cwd.join("straight")));
    let requeued = untimed(&file(&sweep.join(&shards[victim])));
    assert_eq!(requeued.len(), straight.len());
    assert!(
        requeued == straight,
        "the requeued shard's records differ from a straight run"
    );
}
