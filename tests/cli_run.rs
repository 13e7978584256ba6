//! `adaexp run`, `plot` and `data` end to end, on tiny datasets written in the official formats.
// The binary is native: these tests drive it as a process.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::*;
use serde_json::Value;

fn setup(epochs: u64) -> (tempfile::TempDir, String) {
    (tiny_cifar_dir(epochs), "tiny.toml".into())
}

#[test]
fn run_writes_records_summary_and_plots() {
    let (dir, toml) = setup(1);
    let out = ok(&run_on_cpu(dir.path(), &toml, "cifar", "res", &[]));
    assert!(out.contains("SGDM") && out.contains("AdaExp"), "{out}");
    let res = dir.path().join("res");
    let records = jsonl(&res.join("seed-0.jsonl"));
    assert_eq!(records[0]["type"], "run");
    assert_eq!(records[0]["train_images"], 100);
    assert_eq!(records[0]["steps_per_epoch"], 4);
    let steps = records.iter().filter(|r| r["type"] == "step").count();
    assert_eq!(steps, 2 * 4);
    let epochs: Vec<&Value> = records.iter().filter(|r| r["type"] == "epoch").collect();
    assert_eq!(epochs.len(), 2);
    for e in &epochs {
        let acc = e["test_accuracy"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&acc));
        assert!(e["train_loss"].as_f64().unwrap().is_finite());
    }
    // AdaExp's p at its first step is 0.5; SGDM has none.
    let first_adaexp = records
        .iter()
        .find(|r| r["type"] == "step" && r["arm"] == "AdaExp")
        .unwrap();
    assert_eq!(first_adaexp["p"], 0.5);
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(res.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["arms"].as_array().unwrap().len(), 2);
    for name in ["train_loss", "test_accuracy", "schedules", "update_size"] {
        let png = std::fs::read(res.join(format!("{name}.png"))).unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{name}.png");
        let svg = std::fs::read_to_string(res.join(format!("{name}.svg"))).unwrap();
        assert!(
            svg.contains("<svg") && svg.trim_end().ends_with("</svg>"),
            "{name}.svg"
        );
    }
    assert!(
        std::fs::read_to_string(res.join("summary.md"))
            .unwrap()
            .contains("| SGDM |")
    );

    // Results are never overwritten by accident.
    let err = failed(&run_on_cpu(dir.path(), &toml, "cifar", "res", &[]));
    assert!(
        err.contains("seed-0.jsonl exists") && err.contains("--resume"),
        "{err}"
    );

    // With one seed the paired comparison with the first arm has no interval, and says so.
    let table = std::fs::read_to_string(res.join("summary.md")).unwrap();
    assert!(
        table.contains("final test acc − SGDM")
            && table.contains("| AdaExp |")
            && table.contains("n = 1: no interval"),
        "{table}"
    );

    // `plot` on the directory redraws the figures elsewhere, against another reference arm.
    let printed = ok(&adaexp(
        &["plot", "res", "--out", "figs", "--reference", "AdaExp"],
        dir.path(),
    ));
    assert!(
        printed.contains("final test acc − AdaExp") && printed.contains("| SGDM |"),
        "{printed}"
    );
    assert!(dir.path().join("figs/test_accuracy.svg").is_file());
    let err = failed(&adaexp(&["plot", "res", "--reference", "Nope"], dir.path()));
    assert!(
        err.contains("--reference") && err.contains("'SGDM'"),
        "{err}"
    );
}

#[test]
fn resumed_run_equals_uninterrupted_run() {
    let (dir, toml) = setup(2);
    let run = |out: &str, extra: &[&str]| {
        let mut extra = extra.to_vec();
        extra.push("--no-plot");
        ok(&run_on_cpu(dir.path(), &toml, "cifar", out, &extra));
    };
    run("straight", &[]);
    // Stopped after epoch 1 (as if killed at the epoch boundary), then continued.
    run("split", &["--epochs", "1"]);
    // A line written after the checkpoint by a killed run must be dropped on resume.
    let jsonl = dir.path().join("split/seed-0.jsonl");
    let mut partial = std::fs::read(&jsonl).unwrap();
    partial.extend_from_slice(b"{\"type\":\"step\",\"arm\":\"SGDM\",\"st");
    std::fs::write(&jsonl, partial).unwrap();
    run("split", &["--epochs", "2", "--resume"]);
    let straight = untimed(&dir.path().join("straight/seed-0.jsonl"));
    assert_eq!(straight, untimed(&jsonl));

    // Killed inside its first epoch: a partial file and no checkpoint yet.
    std::fs::create_dir_all(dir.path().join("early")).unwrap();
    std::fs::write(
        dir.path().join("early/seed-0.jsonl"),
        b"{\"type\":\"run\",\"exp",
    )
    .unwrap();
    run("early", &["--resume"]);
    assert_eq!(straight, untimed(&dir.path().join("early/seed-0.jsonl")));
}

#[test]
fn a_matched_control_trains_resumes_and_shows_its_rate() {
    let (dir, toml) = setup(2);
    let matched = format!(
        "{}\n[[arms]]\nname = \"Adam at AdaExp's size\"\noptimizer = {{ kind = \"adam\" }}\nlr = {{ match_update_of = \"AdaExp\" }}\n",
        std::fs::read_to_string(dir.path().join(&toml)).unwrap()
    );
    std::fs::write(dir.path().join(&toml), matched).unwrap();
    ok(&run_on_cpu(dir.path(), &toml, "cifar", "straight", &[]));
    let records = jsonl(&dir.path().join("straight/seed-0.jsonl"));
    let sizes = |arm: &str| -> Vec<(f64, f64)> {
        records
            .iter()
            .filter(|r| r["type"] == "step" && r["arm"] == arm)
            .map(|r| (r["update_rms"].as_f64().unwrap(), r["lr"].as_f64().unwrap()))
            .collect()
    };
    let (target, matched) = (sizes("AdaExp"), sizes("Adam at AdaExp's size"));
    assert_eq!(matched.len(), 2 * 4);
    for ((want, _), (got, lr)) in target.iter().zip(&matched) {
        assert!((got - want).abs() <= 1e-5 * want, "{got} vs {want}");
        assert!(lr.is_finite() && *lr > 0.0);
    }
    // The rate it took is in the summary (and drawn in the schedules figure).
    let summary: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("straight/summary.json")).unwrap(),
    )
    .unwrap();
    let rates = summary["arms"][2]["matched_lr"].as_array().unwrap();
    assert_eq!(rates.len(), 8);
    assert!(summary["arms"][1].get("matched_lr").is_none());
    // A checkpoint holds it like any arm: stopped after epoch 1 and resumed, it matches.
    ok(&run_on_cpu(
        dir.path(),
        &toml,
        "cifar",
        "split",
        &["--epochs", "1", "--no-plot"],
    ));
    ok(&run_on_cpu(
        dir.path(),
        &toml,
        "cifar",
        "split",
        &["--epochs", "2", "--resume", "--no-plot"],
    ));
    assert_eq!(
        untimed(&dir.path().join("straight/seed-0.jsonl")),
        untimed(&dir.path().join("split/seed-0.jsonl"))
    );
}

#[test]
fn fashion_mnist_one_channel_runs() {
    let dir = tiny_fashion_dir(60, 20, 1);
    ok(&run_on_cpu(dir.path(), "f.toml", "fm", "r", &["--no-plot"]));
    let records = jsonl(&dir.path().join("r/seed-0.jsonl"));
    assert_eq!(records.iter().filter(|r| r["type"] == "epoch").count(), 2);
}

#[test]
fn bad_data_gives_a_clear_error_naming_the_file() {
    let (dir, toml) = setup(1);
    let cifar = dir.path().join("cifar");
    let run = || failed(&run_on_cpu(dir.path(), &toml, "cifar", "x", &["--no-plot"]));
    std::fs::write(cifar.join("data_batch_3.bin"), vec![0u8; 3073 * 2 + 5]).unwrap();
    let err = run();
    assert!(
        err.contains("data_batch_3.bin") && err.contains("3073"),
        "{err}"
    );

    let mut bad_label = cifar_records(2, 0);
    bad_label[3073] = 12;
    std::fs::write(cifar.join("data_batch_3.bin"), bad_label).unwrap();
    let err = run();
    assert!(
        err.contains("data_batch_3.bin") && err.contains("label 12"),
        "{err}"
    );

    std::fs::remove_file(cifar.join("data_batch_3.bin")).unwrap();
    let err = run();
    assert!(
        err.contains("data_batch_3.bin") && err.contains("missing"),
        "{err}"
    );

    let fm = dir.path().join("fm");
    write_fashion_dir(&fm, 20, 10);
    std::fs::write(
        dir.path().join("f.toml"),
        tiny_experiment("fashion-mnist", 1),
    )
    .unwrap();
    let fashion = || failed(&run_on_cpu(dir.path(), "f.toml", "fm", "y", &["--no-plot"]));
    std::fs::write(
        fm.join("t10k-labels-idx1-ubyte.gz"),
        [0, 0, 8, 3, 0, 0, 0, 1, 0],
    )
    .unwrap();
    let err = fashion();
    assert!(
        err.contains("t10k-labels-idx1-ubyte.gz") && err.contains("magic"),
        "{err}"
    );
    std::fs::write(
        fm.join("t10k-labels-idx1-ubyte.gz"),
        [0, 0, 8, 1, 0, 0, 0, 10, 1, 2],
    )
    .unwrap();
    let err = fashion();
    assert!(
        err.contains("t10k-labels-idx1-ubyte.gz") && err.contains("truncated"),
        "{err}"
    );

    std::fs::write(
        dir.path().join("bad.toml"),
        tiny_experiment("cifar10", 1).replace("epochs = 1", "epochs = 0"),
    )
    .unwrap();
    let err = failed(&adaexp(&["run", "bad.toml", "--data", "cifar"], dir.path()));
    assert!(
        err.contains("bad.toml: epochs: must be at least 1"),
        "{err}"
    );
    let err = failed(&adaexp(&["run", "--preset", "nope"], dir.path()));
    assert!(err.contains("--preset") && err.contains("quick"), "{err}");
    let err = failed(&adaexp(&["plot", "nothing-here"], dir.path()));
    assert!(err.contains("nothing-here"), "{err}");
}

fn digests(bytes: &[u8]) -> (String, String) {
    use sha2::Digest;
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    (
        hex(&sha2::Sha256::digest(bytes)),
        hex(&md5::Md5::digest(bytes)),
    )
}

#[test]
fn fetch_verifies_extracts_and_writes_the_subset() {
    let dir = tempfile::tempdir().unwrap();
    let archive = cifar_archive(30, 20);
    let (sha, md5) = digests(&archive);
    let url = serve(vec![http_ok(&archive)]);
    let args = |url: &str| {
        vec![
            "data".to_owned(),
            "fetch".into(),
            "cifar10".into(),
            "--dir".into(),
            "d".into(),
            "--url".into(),
            format!("{url}/cifar-10-binary.tar.gz"),
            "--sha256".into(),
            sha.clone(),
            "--md5".into(),
            md5.clone(),
            "--train".into(),
            "50".into(),
            "--test".into(),
            "10".into(),
            "--out".into(),
            "web".into(),
        ]
    };
    let run = |args: Vec<String>| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        adaexp(&refs, dir.path())
    };
    ok(&run(args(&url)));
    let d = dir.path().join("d");
    assert!(d.join("cifar-10-binary.tar.gz").is_file());
    for b in 1..=5 {
        assert_eq!(
            std::fs::read(d.join(format!("cifar-10-batches-bin/data_batch_{b}.bin"))).unwrap(),
            cifar_records(30, b)
        );
    }
    assert!(!d.join("cifar-10-batches-bin/batches.meta.txt").exists());
    assert!(!d.join("escape.txt").exists() && !dir.path().join("escape.txt").exists());
    assert_eq!(
        std::fs::read(dir.path().join("web/train_batch.bin"))
            .unwrap()
            .len(),
        50 * 3073
    );
    assert_eq!(
        std::fs::read(dir.path().join("web/test_batch.bin"))
            .unwrap()
            .len(),
        10 * 3073
    );

    // Done already: no download (the server would refuse a second request).
    let again = ok(&run(args("http://127.0.0.1:9")));
    assert!(again.contains("already"), "{again}");

    // The page's subset loads like the full set.
    std::fs::write(dir.path().join("tiny.toml"), tiny_experiment("cifar10", 1)).unwrap();
    ok(&run_on_cpu(
        dir.path(),
        "tiny.toml",
        "web",
        "r",
        &["--no-plot"],
    ));
}

#[test]
fn fetch_rejects_a_wrong_checksum_or_a_broken_download_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let archive = cifar_archive(10, 10);
    let (sha, md5) = digests(&archive);
    let mut tampered = archive.clone();
    let last = tampered.len() - 20;
    tampered[last] ^= 0xff;
    let mut truncated = http_ok(&archive);
    truncated.truncate(truncated.len() - 1000);
    let url = serve(vec![http_ok(&tampered), truncated]);
    for _ in 0..2 {
        let err = failed(&adaexp(
            &[
                "data",
                "fetch",
                "cifar10",
                "--dir",
                "d",
                "--url",
                &url,
                "--sha256",
                &sha,
                "--md5",
                &md5,
                "--no-subset",
            ],
            dir.path(),
        ));
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(&url), "{err}");
        // Not even the folder it made for the download stays.
        assert!(!dir.path().join("d").exists(), "d/ left behind");
    }
}

/// A tuned run end to end: a validation split, a grid, its control, selection in the summary,
/// the lr-sensitivity figure, the processor in the header; then a shard of one grid member.
#[test]
fn a_shard_without_the_first_family_summarises_and_exits_cleanly() {
    let dir = tiny_cifar_dir(1);
    let text = std::fs::read_to_string(dir.path().join("tiny.toml"))
        .unwrap()
        .replace("seeds = [0]", "seeds = [0]\nval_size = 20")
        .replace("lr = { base = 1e-3 }", "lr = { base = [1e-3, 1e-2] }");
    assert!(text.contains("[1e-3, 1e-2]"), "{text}");
    std::fs::write(dir.path().join("grid.toml"), text).unwrap();
    // SGDM, the experiment's first family, is not in this shard: the summary compares within
    // the families it has.
    let out = ok(&run_on_cpu(
        dir.path(),
        "grid.toml",
        "cifar",
        "res",
        &["--arms", "AdaExp @ lr 1e-3", "--arms", "AdaExp @ lr 1e-2"],
    ));
    assert!(
        out.contains("Learning rates, chosen on the validation split"),
        "{out}"
    );
}

#[test]
fn a_grid_with_a_validation_split_selects_on_validation_and_reports_test_accuracy() {
    let dir = tiny_cifar_dir(1);
    std::fs::write(
        dir.path().join("tuned.toml"),
        r#"
name = "tuned"
dataset = "cifar10"
model = "small-cnn"
epochs = 1
batch_size = 25
seeds = [0, 1]
val_size = 20

[[arms]]
name = "SGDM"
optimizer = { kind = "sgdm" }
lr = { base = [0.01, 0.05] }

[[arms]]
name = "Adam matched to SGDM"
optimizer = { kind = "adam" }
lr = { match_update_of = "SGDM" }
"#,
    )
    .unwrap();
    let out = ok(&run_on_cpu(dir.path(), "tuned.toml", "cifar", "res", &[]));
    assert!(
        out.contains("80 train / 20 validation / 30 test images"),
        "{out}"
    );
    let res = dir.path().join("res");
    let records = jsonl(&res.join("seed-0.jsonl"));
    let header = &records[0];
    assert_eq!(
        (
            header["train_images"].as_u64(),
            header["val_images"].as_u64()
        ),
        (Some(80), Some(20))
    );
    assert!(
        header["processor"].as_str().is_some_and(|p| !p.is_empty()),
        "{header}"
    );
    let arms: Vec<&str> = header["experiment"]["arms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        arms,
        [
            "SGDM @ lr 1e-2",
            "SGDM @ lr 5e-2",
            "Adam matched to SGDM @ lr 1e-2",
            "Adam matched to SGDM @ lr 5e-2"
        ]
    );
    let epochs: Vec<&Value> = records.iter().filter(|r| r["type"] == "epoch").collect();
    assert_eq!(epochs.len(), 4);
    for e in &epochs {
        let val = e["val_accuracy"].as_f64().unwrap();
        // 20 validation images: accuracy is a multiple of 1/20.
        assert!((val * 20.0 - (val * 20.0).round()).abs() < 1e-9, "{e}");
        assert!(e["val_loss"].as_f64().unwrap().is_finite());
    }

    // The summary picks SGDM's rate by validation accuracy, and reports that arm's test accuracy.
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(res.join("summary.json")).unwrap()).unwrap();
    let final_val = |arm: &str| -> f64 {
        summary["arms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == arm)
            .unwrap()["final_val_accuracy"]["mean"]
            .as_f64()
            .unwrap()
    };
    let chosen = if final_val("SGDM @ lr 5e-2") > final_val("SGDM @ lr 1e-2") {
        "5e-2"
    } else {
        "1e-2"
    };
    let table = std::fs::read_to_string(res.join("summary.md")).unwrap();
    assert!(
        table.contains("Learning rates, chosen on the validation split"),
        "{table}"
    );
    assert!(
        table.contains(&format!("| SGDM | SGDM @ lr {chosen} | {chosen} |")),
        "{table}"
    );
    assert!(
        table.contains(&format!(
            "| Adam matched to SGDM | Adam matched to SGDM @ lr {chosen} |"
        )),
        "{table}"
    );
    assert!(
        table.contains("Widen the grid"),
        "a pick in a grid of two is at its edge: {table}"
    );
    assert!(
        table.contains("Computed on: cpu (burn flex) on "),
        "{table}"
    );
    for ext in ["png", "svg"] {
        assert!(res.join(format!("lr_sensitivity.{ext}")).is_file());
    }
    // The curve figures draw the chosen arm of each family, not every rate.
    let curves = std::fs::read_to_string(res.join("test_accuracy.svg")).unwrap();
    let other = if chosen == "5e-2" { "1e-2" } else { "5e-2" };
    assert!(curves.contains(&format!("SGDM @ lr {chosen}")), "{curves}");
    assert!(!curves.contains(&format!("SGDM @ lr {other}")));
    assert!(curves.contains("chosen rates"));
    // A family as the reference: its chosen arm is the per-arm tables' reference too.
    let by_family = ok(&adaexp(
        &["plot", "res", "--out", "by-family", "--reference", "SGDM"],
        dir.path(),
    ));
    assert!(
        by_family.contains(&format!("| final test acc − SGDM @ lr {chosen} (pp) |")),
        "{by_family}"
    );

    // One grid member with its control, as a shard: the same records as beside the others.
    ok(&run_on_cpu(
        dir.path(),
        "tuned.toml",
        "cifar",
        "shard",
        &[
            "--arms",
            "SGDM @ lr 5e-2,Adam matched to SGDM @ lr 5e-2",
            "--seeds",
            "0",
        ],
    ));
    let shard_file = std::fs::read_dir(dir.path().join("shard"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .unwrap();
    let of = |records: Vec<Value>| -> Vec<Value> {
        records
            .into_iter()
            .filter(|r| r["arm"].as_str().is_some_and(|a| a.ends_with("5e-2")))
            .collect()
    };
    assert_eq!(
        of(untimed(&shard_file)),
        of(untimed(&res.join("seed-0.jsonl")))
    );
}
