//! Hostile inputs through the binary, one regression test per class of defect: crashes instead
//! of errors, results lost or overwritten, damaged checkpoints, writes outside the output
//! folder, one run counted twice, wrong data accepted, a failed first run.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;
use serde_json::Value;

/// `run EXPERIMENT` on the tiny CIFAR-10 data into `out`, without plots.
fn on_cifar(dir: &Path, experiment: &str, out: &str, extra: &[&str]) -> Output {
    let mut extra = extra.to_vec();
    extra.push("--no-plot");
    run_on_cpu(dir, experiment, "cifar", out, &extra)
}

/// Writes `other.toml`: the tiny experiment with one setting changed.
fn other_experiment(dir: &Path, epochs: u64, from: &str, to: &str) {
    let text = tiny_experiment("cifar10", epochs);
    assert!(text.contains(from));
    std::fs::write(dir.join("other.toml"), text.replace(from, to)).unwrap();
}

/// Every file under `root`, relative to it.
fn tree(root: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path.clone());
            }
            out.insert(path.strip_prefix(root).unwrap().to_path_buf());
        }
    }
    out
}

fn summary_seeds(path: &Path) -> Vec<Value> {
    let summary: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    summary["arms"][0]["seeds"].as_array().unwrap().clone()
}

/// A tar.gz holding one official member whose header claims 8 GiB.
fn archive_with_huge_member() -> Vec<u8> {
    let mut header = tar::Header::new_gnu();
    header
        .set_path("cifar-10-batches-bin/data_batch_1.bin")
        .unwrap();
    header.set_size(8 << 30);
    header.set_mode(0o644);
    header.set_cksum();
    let mut tar = header.as_bytes().to_vec();
    tar.extend([0u8; 4096]);
    gz(&tar)
}

#[test]
fn hostile_archives_are_errors_on_every_path() {
    let dir = tempfile::tempdir().unwrap();
    let archive = archive_with_huge_member();
    std::fs::write(dir.path().join("x.tar.gz"), &archive).unwrap();
    std::fs::write(dir.path().join("t.toml"), tiny_experiment("cifar10", 1)).unwrap();
    let expect_cap = |err: &str| {
        assert!(
            err.contains("data_batch_1.bin") && err.contains("30730000"),
            "{err}"
        );
    };
    expect_cap(&failed(&run_on_cpu(
        dir.path(),
        "t.toml",
        "x.tar.gz",
        "r",
        &[],
    )));
    expect_cap(&failed(&adaexp(
        &["data", "subset", "--data", "x.tar.gz", "--out", "w"],
        dir.path(),
    )));
    // `fetch` with the archive already in place and checksums that match it.
    std::fs::create_dir_all(dir.path().join("d")).unwrap();
    std::fs::write(dir.path().join("d/cifar-10-binary.tar.gz"), &archive).unwrap();
    let (sha, md5) = {
        use sha2::Digest;
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        (
            hex(&sha2::Sha256::digest(&archive)),
            hex(&md5::Md5::digest(&archive)),
        )
    };
    expect_cap(&failed(&adaexp(
        &[
            "data", "fetch", "cifar10", "--dir", "d", "--sha256", &sha, "--md5", &md5,
        ],
        dir.path(),
    )));
    assert!(!dir.path().join("r").exists() && !dir.path().join("w").exists());
}

/// A temp dir with `f.toml`, the tiny experiment on Fashion-MNIST read from `fm/`.
fn fashion_experiment() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("f.toml"),
        tiny_experiment("fashion-mnist", 1),
    )
    .unwrap();
    dir
}

/// The error of a run of `f.toml` on `fm/`.
fn fashion_error(dir: &Path) -> String {
    failed(&run_on_cpu(dir, "f.toml", "fm", "r", &["--no-plot"]))
}

#[test]
fn hostile_idx_files_are_errors() {
    let dir = fashion_experiment();
    let fm = dir.path().join("fm");
    let images = fm.join("train-images-idx3-ubyte.gz");
    let cases: Vec<(Vec<u8>, &str)> = vec![
        // The product of the dimensions wraps a 64-bit integer.
        (
            idx(3, &[u32::MAX, u32::MAX, u32::MAX], &[0; 64]),
            "declare more than",
        ),
        (idx(3, &[40, 0, 0], &[]), "0×0"),
        // Declares 40 images, inflates to 64 MiB more: read stops at the declared size.
        (
            {
                let mut bomb = idx(3, &[40, 28, 28], &vec![0; 40 * 784]);
                bomb.extend(std::iter::repeat_n(0u8, 64 << 20));
                bomb
            },
            "holds more",
        ),
    ];
    for (bytes, expected) in cases {
        write_fashion_dir(&fm, 40, 20);
        std::fs::write(&images, gz(&bytes)).unwrap();
        let err = fashion_error(dir.path());
        assert!(
            err.contains("train-images-idx3-ubyte.gz") && err.contains(expected),
            "{err}"
        );
    }
}

#[test]
fn data_the_model_cannot_use_is_refused_with_the_limit() {
    let dir = fashion_experiment();
    let fm = dir.path().join("fm");
    for side in [4, 1] {
        write_idx_split(&fm, "train", 40, (side, side));
        write_idx_split(&fm, "t10k", 20, (side, side));
        let err = fashion_error(dir.path());
        assert!(
            err.contains(&format!("{side}×{side}"))
                && err.contains("small-cnn")
                && err.contains("8×8"),
            "{err}"
        );
    }
    write_idx_split(&fm, "train", 40, (28, 28));
    write_idx_split(&fm, "t10k", 20, (27, 28));
    let err = fashion_error(dir.path());
    assert!(
        err.contains("t10k-images") && err.contains("1×27×28") && err.contains("1×28×28"),
        "{err}"
    );
    assert!(!dir.path().join("r").exists());

    let cifar = tiny_cifar_dir(1);
    for flag in ["--train", "--test"] {
        let err = failed(&adaexp(
            &["data", "subset", "--data", "cifar", flag, "0", "--out", "w"],
            cifar.path(),
        ));
        assert!(err.contains(flag) && err.contains("at least 1"), "{err}");
    }
    assert!(!cifar.path().join("w").exists());
}

#[test]
fn resume_never_replaces_records_it_cannot_reproduce() {
    let dir = tiny_cifar_dir(1);
    ok(&on_cifar(dir.path(), "tiny.toml", "res", &[]));
    let jsonl = dir.path().join("res/seed-0.jsonl");
    let finished = std::fs::read(&jsonl).unwrap();
    let finished_records = untimed(&jsonl);
    std::fs::remove_file(dir.path().join("res/seed-0.checkpoint")).unwrap();

    // Another experiment into the same folder.
    other_experiment(dir.path(), 1, "base = 0.05", "base = 0.01");
    let err = failed(&on_cifar(dir.path(), "other.toml", "res", &["--resume"]));
    assert!(
        err.contains("another experiment") && err.contains("arms"),
        "{err}"
    );
    assert_eq!(std::fs::read(&jsonl).unwrap(), finished);
    // The same experiment on the same backend starts over and writes the same records again.
    let out = ok(&on_cifar(dir.path(), "tiny.toml", "res", &["--resume"]));
    assert!(out.contains("starting over"), "{out}");
    assert_eq!(untimed(&jsonl), finished_records);

    // A result file changed behind its checkpoint's back is left alone too.
    ok(&on_cifar(dir.path(), "tiny.toml", "res2", &[]));
    let jsonl = dir.path().join("res2/seed-0.jsonl");
    let text = std::fs::read_to_string(&jsonl).unwrap();
    let at = text.rfind("\"epoch\":1").unwrap() + 8;
    let mut changed = text.into_bytes();
    changed[at] = b'7';
    std::fs::write(&jsonl, &changed).unwrap();
    let err = failed(&on_cifar(
        dir.path(),
        "tiny.toml",
        "res2",
        &["--resume", "--epochs", "2"],
    ));
    assert!(err.contains("was changed"), "{err}");
    assert_eq!(std::fs::read(&jsonl).unwrap(), changed);
}

#[test]
fn the_summary_covers_every_seed_in_the_folder() {
    let dir = tiny_cifar_dir(1);
    ok(&on_cifar(dir.path(), "tiny.toml", "res", &[]));
    ok(&on_cifar(dir.path(), "tiny.toml", "res", &["--seeds", "1"]));
    assert_eq!(
        summary_seeds(&dir.path().join("res/summary.json")),
        vec![0, 1]
    );
    let table = std::fs::read_to_string(dir.path().join("res/summary.md")).unwrap();
    assert!(table.contains("| 2 |"), "{table}");
    // Two seeds pair into an interval.
    assert!(
        table.contains("| AdaExp |") && !table.contains("no interval"),
        "{table}"
    );
    // Another experiment's seed may not join (or replace) this folder's summary.
    other_experiment(dir.path(), 1, "batch_size = 25", "batch_size = 20");
    let err = failed(&on_cifar(
        dir.path(),
        "other.toml",
        "res",
        &["--seeds", "2"],
    ));
    assert!(
        err.contains("another experiment") && err.contains("batch_size"),
        "{err}"
    );
    assert!(!dir.path().join("res/seed-2.jsonl").exists());
}

#[test]
fn a_damaged_checkpoint_is_refused_and_the_records_stay() {
    let dir = tiny_cifar_dir(2);
    ok(&on_cifar(
        dir.path(),
        "tiny.toml",
        "res",
        &["--epochs", "1"],
    ));
    let checkpoint = dir.path().join("res/seed-0.checkpoint");
    let jsonl = dir.path().join("res/seed-0.jsonl");
    let records = std::fs::read(&jsonl).unwrap();
    let pristine = std::fs::read(&checkpoint).unwrap();
    for (member, arm) in [
        ("arm-0.model.bpk", "SGDM"),
        ("arm-1.optimizer.bpk", "AdaExp"),
    ] {
        let offset = {
            let mut archive = tar::Archive::new(&pristine[..]);
            let entry = archive
                .entries()
                .unwrap()
                .map(Result::unwrap)
                .find(|e| e.path().unwrap().to_str() == Some(member))
                .unwrap();
            (entry.raw_file_position() + entry.size() / 2) as usize
        };
        let mut damaged = pristine.clone();
        damaged[offset] ^= 0x10;
        std::fs::write(&checkpoint, &damaged).unwrap();
        let err = failed(&on_cifar(dir.path(), "tiny.toml", "res", &["--resume"]));
        assert!(
            err.contains(&format!("arm '{arm}'"))
                && err.contains(member)
                && err.contains("checksum"),
            "{err}"
        );
        assert_eq!(std::fs::read(&jsonl).unwrap(), records);
    }
    std::fs::write(&checkpoint, &pristine).unwrap();
    ok(&on_cifar(dir.path(), "tiny.toml", "res", &["--resume"]));
}

#[test]
fn nothing_is_written_outside_the_output_folder() {
    let dir = tiny_cifar_dir(1);
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    other_experiment(dir.path(), 1, "name = \"tiny\"", "name = \"../../x\"");
    let before = tree(dir.path());
    // Default --out is results/NAME.
    let err = failed(&adaexp(
        &[
            "run",
            "../other.toml",
            "--data",
            "../cifar",
            "--backend",
            "cpu",
        ],
        &work,
    ));
    assert!(
        err.contains("name") && err.contains("letters, digits"),
        "{err}"
    );
    assert_eq!(tree(dir.path()), before);

    // A result file carrying such a name (edited by hand) is refused by `plot`.
    ok(&on_cifar(dir.path(), "tiny.toml", "res", &[]));
    let text = std::fs::read_to_string(dir.path().join("res/seed-0.jsonl")).unwrap();
    std::fs::create_dir_all(dir.path().join("evil")).unwrap();
    std::fs::write(
        dir.path().join("evil/seed-0.jsonl"),
        text.replacen("\"name\":\"tiny\"", "\"name\":\"../../x\"", 1),
    )
    .unwrap();
    let before = tree(dir.path());
    let err = failed(&adaexp(
        &[
            "plot",
            "evil/seed-0.jsonl",
            "res/seed-0.jsonl",
            "--out",
            "figs",
        ],
        dir.path(),
    ));
    assert!(
        err.contains("evil/seed-0.jsonl line 1") && err.contains("name"),
        "{err}"
    );
    // Only --out may gain files.
    let after = tree(dir.path());
    assert!(
        after.difference(&before).all(|p| p.starts_with("figs")),
        "{:?}",
        after.difference(&before).collect::<Vec<_>>()
    );
}

#[test]
fn one_run_is_never_counted_twice() {
    let dir = tiny_cifar_dir(1);
    other_experiment(dir.path(), 1, "seeds = [0]", "seeds = [0, 0]");
    let err = failed(&on_cifar(dir.path(), "other.toml", "r", &[]));
    assert!(
        err.contains("seeds") && err.contains("seed 0 is listed twice"),
        "{err}"
    );
    let err = failed(&on_cifar(
        dir.path(),
        "tiny.toml",
        "r",
        &["--seeds", "0,0", "--resume"],
    ));
    assert!(err.contains("--seeds") && err.contains("twice"), "{err}");
    assert!(!dir.path().join("r").exists());

    ok(&on_cifar(dir.path(), "tiny.toml", "res", &[]));
    let out = ok(&adaexp(
        &["plot", "res", "res/seed-0.jsonl", "--out", "figs"],
        dir.path(),
    ));
    assert!(out.contains("| 1 |"), "{out}");
    let table = std::fs::read_to_string(dir.path().join("figs/summary.md")).unwrap();
    assert!(!table.contains("±") && table.contains("| 1 |"), "{table}");
}

#[test]
fn a_failed_first_run_says_what_to_do_and_leaves_no_folder() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on stands for a machine without internet.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_adaexp"))
        .args(["run", "--preset", "quick", "--backend", "cpu"])
        .env(
            "ADAEXP_CIFAR10_URL",
            "http://127.0.0.1:9/cifar-10-binary.tar.gz",
        )
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = failed(&output);
    assert!(
        err.contains("--data") && err.contains("--preset fashion-quick"),
        "{err}"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
