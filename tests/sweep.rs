//! Shards and sweeps without a cluster: `run --arms`, `sweep --engine local`, `sweep status`,
//! `plot` of a sweep folder, and the job script `--dry-run` prints. tests/slurm.rs runs the same
//! on Slurm.

mod common;

use common::*;

fn untimed_arm(path: &std::path::Path, arm: &str) -> Vec<serde_json::Value> {
    untimed(path)
        .into_iter()
        .filter(|r| r["arm"] == arm)
        .collect()
}

#[test]
fn an_arm_run_alone_writes_its_records_of_the_full_run_and_shards_merge() {
    let dir = tiny_cifar_dir(2);
    let cwd = dir.path();
    ok(&run_on_cpu(
        cwd,
        "tiny.toml",
        "cifar",
        "full",
        &["--no-plot"],
    ));
    for arm in ["AdaExp", "SGDM"] {
        ok(&run_on_cpu(
            cwd,
            "tiny.toml",
            "cifar",
            "shards",
            &["--arms", arm, "--no-plot"],
        ));
    }
    for (arm, file) in [("SGDM", "seed-0.sgdm"), ("AdaExp", "seed-0.adaexp")] {
        let alone = untimed_arm(&cwd.join(format!("shards/{file}.jsonl")), arm);
        assert_eq!(alone.len(), 2 * 4 + 2);
        assert_eq!(
            alone,
            untimed_arm(&cwd.join("full/seed-0.jsonl"), arm),
            "{arm}"
        );
    }
    let header = &jsonl(&cwd.join("shards/seed-0.sgdm.jsonl"))[0];
    assert_eq!(header["arms"], serde_json::json!(["SGDM"]));
    assert_eq!(header["experiment"]["arms"].as_array().unwrap().len(), 2);

    // The two shards are one seed of both arms.
    ok(&adaexp(&["plot", "shards"], cwd));
    let summary = std::fs::read_to_string(cwd.join("shards/summary.md")).unwrap();
    for arm in ["SGDM", "AdaExp"] {
        let row = summary
            .lines()
            .find(|l| l.starts_with(&format!("| {arm} |")))
            .unwrap();
        assert!(row.ends_with("| 1 | 2 |"), "{row}");
    }

    let err = failed(&run_on_cpu(
        cwd,
        "tiny.toml",
        "cifar",
        "x",
        &["--arms", "Nope"],
    ));
    assert!(
        err.contains("--arms: no arm is named \"Nope\"; the arms are [\"SGDM\", \"AdaExp\"]"),
        "{err}"
    );
    assert!(!cwd.join("x").exists());
}

#[test]
fn a_local_sweep_passes_arm_names_that_hold_commas() {
    let dir = tiny_cifar_dir(1);
    let cwd = dir.path();
    let text = std::fs::read_to_string(cwd.join("tiny.toml"))
        .unwrap()
        .replace("name = \"SGDM\"", "name = \"SGDM, lr 0.05\"");
    assert!(text.contains("SGDM, lr 0.05"), "{text}");
    std::fs::write(cwd.join("comma.toml"), text).unwrap();
    ok(&adaexp(
        &[
            "sweep",
            "comma.toml",
            "--engine",
            "local",
            "--backend",
            "cpu",
            "--out",
            "s",
            "--data",
            "cifar",
        ],
        cwd,
    ));
    let status = ok(&adaexp(&["sweep", "status", "s"], cwd));
    assert!(status.contains("2 of 2 shards finished"), "{status}");
    assert!(status.contains("| SGDM, lr 0.05 | finished |"), "{status}");
    assert!(status.contains("measured: "), "{status}");
    assert!(status.contains("0 arm-epochs to go"), "{status}");
}

#[test]
#[cfg(unix)]
fn output_into_a_closed_pipe_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_adaexp"))
        .args(["sweep", "--preset", "fashion-tuned", "--engine", "local"])
        .args(["--out", "s", "--dry-run"])
        .current_dir(dir.path())
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(output.status.signal(), Some(13), "{:?}", output.status); // SIGPIPE
}

#[test]
fn a_matched_arm_needs_its_target_in_the_shard() {
    let dir = tiny_cifar_dir(1);
    let cwd = dir.path();
    let text = std::fs::read_to_string(cwd.join("tiny.toml")).unwrap()
        + "\n[[arms]]\nname = \"Matched\"\noptimizer = { kind = \"adam\" }\nlr = { match_update_of = \"AdaExp\" }\n";
    std::fs::write(cwd.join("m.toml"), text).unwrap();
    let err = failed(&run_on_cpu(
        cwd,
        "m.toml",
        "cifar",
        "x",
        &["--arms", "Matched"],
    ));
    assert!(
        err.contains("'Matched' takes its step size from 'AdaExp'"),
        "{err}"
    );
    // The sweep keeps them together: 2 shards per seed, not 3.
    let script = ok(&adaexp(
        &[
            "sweep",
            "m.toml",
            "--out",
            "s",
            "--data",
            "cifar",
            "--dry-run",
        ],
        cwd,
    ));
    assert!(script.contains("--array=0-1\n"), "{script}");
    assert!(
        script.contains("'--arms' 'AdaExp' '--arms' 'Matched'"),
        "{script}"
    );
}

#[test]
fn a_local_sweep_trains_every_shard_reports_them_and_retries_a_failed_one() {
    let dir = tiny_cifar_dir(2);
    let cwd = dir.path();
    let sweep = [
        "sweep",
        "tiny.toml",
        "--out",
        "sw",
        "--engine",
        "local",
        "--data",
        "cifar",
        "--backend",
        "cpu",
        "--seeds",
        "0,1",
    ];
    ok(&adaexp(&sweep, cwd));
    let status = ok(&adaexp(&["sweep", "status", "sw"], cwd));
    assert!(status.contains("4 of 4 shards finished"), "{status}");
    assert!(
        status.contains("| 3 | 1 | AdaExp | finished | 2/2 (step 8) |"),
        "{status}"
    );
    let summary = std::fs::read_to_string(cwd.join("sw/summary.md")).unwrap();
    assert!(
        summary.contains("| SGDM |") && summary.contains("| 2 | 2 |"),
        "{summary}"
    );
    assert!(!summary.contains("Not finished"), "{summary}");
    assert!(cwd.join("sw/test_accuracy.png").is_file());

    // A shard that failed (its task exited 1 and left nothing) is listed, not dropped.
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cwd.join("sw/sweep.json")).unwrap()).unwrap();
    let shard = cwd
        .join("sw")
        .join(manifest["shards"][2]["dir"].as_str().unwrap());
    std::fs::remove_dir_all(&shard).unwrap();
    std::fs::create_dir(&shard).unwrap();
    std::fs::write(shard.join("exit-code"), "1\n").unwrap();
    let status = ok(&adaexp(&["sweep", "status", "sw"], cwd));
    assert!(
        status.contains("| 2 | 1 | SGDM | failed (exit 1; see its log) | 0/2 |"),
        "{status}"
    );
    ok(&adaexp(&["plot", "sw"], cwd));
    let summary = std::fs::read_to_string(cwd.join("sw/summary.md")).unwrap();
    assert!(
        summary.contains("Not finished: 1 of the sweep's shards"),
        "{summary}"
    );
    assert!(summary.contains("| 2 | 1 | SGDM | failed"), "{summary}");
    let sgdm = summary.lines().find(|l| l.starts_with("| SGDM |")).unwrap();
    assert!(sgdm.ends_with("| 1 | 2 |"), "one seed left: {sgdm}");

    // The same command again trains only what is missing.
    let again = ok(&adaexp(&sweep, cwd));
    assert_eq!(again.matches("finished already").count(), 3, "{again}");
    let status = ok(&adaexp(&["sweep", "status", "sw"], cwd));
    assert!(status.contains("4 of 4 shards finished"), "{status}");

    // Another experiment in the same folder is refused.
    let mut other = sweep.to_vec();
    other[11] = "0";
    let err = failed(&adaexp(&other, cwd));
    assert!(
        err.contains("holds another sweep ('tiny', 4 shards)"),
        "{err}"
    );
    let err = failed(&adaexp(&["sweep", "status", "cifar"], cwd));
    assert!(err.contains("cifar: not a sweep folder"), "{err}");
}

#[test]
#[cfg(unix)]
fn the_dry_run_prints_the_job_array_with_every_option_and_writes_nothing() {
    let dir = tiny_cifar_dir(1);
    let cwd = dir.path();
    let script = ok(&adaexp(
        &[
            "sweep",
            "tiny.toml",
            "--out",
            "sw",
            "--data",
            "cifar",
            "--seeds",
            "0,1,2",
            "--partition",
            "gpu",
            "--time",
            "12:00:00",
            "--gpus-per-task",
            "1",
            "--cpus-per-task",
            "8",
            "--mem",
            "32G",
            "--max-parallel",
            "4",
            "--sbatch-arg=--account=proj42",
            "--sbatch-arg=--qos=low",
            "--dry-run",
        ],
        cwd,
    ));
    for line in [
        "#SBATCH --array=0-5%4",
        "#SBATCH --requeue",
        "#SBATCH --signal=B:USR1@300",
        "#SBATCH --open-mode=append",
        "#SBATCH --partition=gpu",
        "#SBATCH --time=12:00:00",
        "#SBATCH --gpus-per-task=1",
        "#SBATCH --cpus-per-task=8",
        "#SBATCH --mem=32G",
        "#SBATCH --account=proj42",
        "#SBATCH --qos=low",
    ] {
        assert!(
            script.lines().any(|l| l == line),
            "no {line:?} in\n{script}"
        );
    }
    assert!(
        script.contains("'--seeds' '2' '--arms' 'AdaExp'"),
        "{script}"
    );
    assert!(script.contains("'--resume'"), "{script}");
    assert!(!cwd.join("sw").exists(), "a dry run writes nothing");
    // The script is valid bash.
    std::fs::write(cwd.join("s.sh"), &script).unwrap();
    let check = std::process::Command::new("bash")
        .args(["-n", "s.sh"])
        .current_dir(cwd)
        .status()
        .unwrap();
    assert!(check.success());
}

#[test]
fn options_that_cannot_work_are_refused_naming_the_flag() {
    let dir = tiny_cifar_dir(1);
    let cwd = dir.path();
    for (flag, value, says) in [
        ("--max-parallel", "0", "0 is not in 1.."),
        ("--cpus-per-task", "0", "0 is not in 1.."),
        ("--time", "soon", "must be a Slurm time limit"),
        (
            "--sbatch-arg",
            "--account=x\n#SBATCH --wrap=rm",
            "must be one line",
        ),
        ("--partition", "gpu\n#SBATCH --wrap=rm", "must be one line"),
        ("--mem", "", "must not be empty"),
    ] {
        let option = format!("{flag}={value}");
        let err = failed(&adaexp(
            &[
                "sweep",
                "tiny.toml",
                "--out",
                "sw",
                "--data",
                "cifar",
                &option,
                "--dry-run",
            ],
            cwd,
        ));
        assert!(
            err.contains(flag) && err.contains(says),
            "{flag} {value:?}: {err}"
        );
    }
    assert!(!cwd.join("sw").exists());
}
