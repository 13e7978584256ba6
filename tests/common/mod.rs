//! Tiny datasets in the official formats, written by the tests themselves, and the binary.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

pub fn adaexp(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_adaexp"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("the adaexp binary runs")
}

/// `adaexp run EXPERIMENT --data DATA --backend cpu --out OUT EXTRA…` in `cwd`.
pub fn run_on_cpu(cwd: &Path, experiment: &str, data: &str, out: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "run",
        experiment,
        "--data",
        data,
        "--backend",
        "cpu",
        "--out",
        out,
    ];
    args.extend_from_slice(extra);
    adaexp(&args, cwd)
}

pub fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The stderr of a run that must fail.
pub fn failed(output: &Output) -> String {
    assert!(
        !output.status.success(),
        "expected failure, got success: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `n` CIFAR records with labels cycling 0..9 and pixels that depend on the label.
pub fn cifar_records(n: usize, offset: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n * 3073);
    for i in 0..n {
        let label = ((i + offset) % 10) as u8;
        out.push(label);
        out.extend((0..3072).map(|p| ((p * 7 + i * 13) % 200) as u8 / 2 + label * 10));
    }
    out
}

/// The official layout: data_batch_1..5.bin (`per_batch` records each) and test_batch.bin.
pub fn write_cifar_dir(dir: &Path, per_batch: usize, test: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for b in 1..=5 {
        std::fs::write(
            dir.join(format!("data_batch_{b}.bin")),
            cifar_records(per_batch, b),
        )
        .unwrap();
    }
    std::fs::write(dir.join("test_batch.bin"), cifar_records(test, 0)).unwrap();
}

/// A .tar.gz laid out like the official archive (plus a member outside the expected set).
pub fn cifar_archive(per_batch: usize, test: usize) -> Vec<u8> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(encoder);
    let mut add = |name: &str, bytes: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, name, bytes).unwrap();
    };
    for b in 1..=5 {
        add(
            &format!("cifar-10-batches-bin/data_batch_{b}.bin"),
            &cifar_records(per_batch, b),
        );
    }
    add(
        "cifar-10-batches-bin/test_batch.bin",
        &cifar_records(test, 0),
    );
    add("cifar-10-batches-bin/batches.meta.txt", b"airplane\n");
    // A path-traversal member: the builder refuses `..` in paths, so write the name by hand.
    let body = b"must not be written";
    let mut header = tar::Header::new_old();
    let name = b"cifar-10-batches-bin/../escape.txt";
    header.as_old_mut().name[..name.len()].copy_from_slice(name);
    header.set_size(body.len() as u64);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    tar.append(&header, &body[..]).unwrap();
    tar.into_inner().unwrap().finish().unwrap()
}

pub fn idx(ndim: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 8, ndim];
    for d in dims {
        out.extend(d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

pub fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// One split's two IDX files (gzip-compressed, as Debian ships them): `n` images of h × w.
pub fn write_idx_split(dir: &Path, prefix: &str, n: usize, (h, w): (usize, usize)) {
    std::fs::create_dir_all(dir).unwrap();
    let pixels_per_image = h * w;
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    let pixels: Vec<u8> = (0..n * pixels_per_image)
        .map(|p| ((p % pixels_per_image) as u8 / 4).wrapping_add(labels[p / pixels_per_image] * 20))
        .collect();
    std::fs::write(
        dir.join(format!("{prefix}-images-idx3-ubyte.gz")),
        gz(&idx(3, &[n as u32, h as u32, w as u32], &pixels)),
    )
    .unwrap();
    std::fs::write(
        dir.join(format!("{prefix}-labels-idx1-ubyte.gz")),
        gz(&idx(1, &[n as u32], &labels)),
    )
    .unwrap();
}

/// Fashion-MNIST's four IDX files, 28×28.
pub fn write_fashion_dir(dir: &Path, train: usize, test: usize) {
    write_idx_split(dir, "train", train, (28, 28));
    write_idx_split(dir, "t10k", test, (28, 28));
}

/// A temp dir with a CIFAR-10 directory `cifar/` (100 training, 30 test images) and
/// `tiny.toml`, the tiny experiment over `epochs` epochs.
pub fn tiny_cifar_dir(epochs: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_cifar_dir(&dir.path().join("cifar"), 20, 30);
    std::fs::write(
        dir.path().join("tiny.toml"),
        tiny_experiment("cifar10", epochs),
    )
    .unwrap();
    dir
}

/// A temp dir with a Fashion-MNIST directory `fm/` of `train`/`test` images and the tiny
/// experiment `f.toml` over `epochs` epochs.
pub fn tiny_fashion_dir(train: usize, test: usize, epochs: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_fashion_dir(&dir.path().join("fm"), train, test);
    std::fs::write(
        dir.path().join("f.toml"),
        tiny_experiment("fashion-mnist", epochs),
    )
    .unwrap();
    dir
}

/// Every line of a result file, as JSON.
pub fn jsonl(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// A result file's records without what differs between two runs of the same thing: the
/// fields that measure time, and the experiment's epochs (a run may be extended). A line that
/// is not JSON (half written) stays as text, so that a difference shows.
pub fn untimed(path: &Path) -> Vec<serde_json::Value> {
    use serde_json::Value;
    String::from_utf8_lossy(&std::fs::read(path).unwrap())
        .lines()
        .map(|line| {
            let mut v: Value = serde_json::from_str(line).unwrap_or(Value::String(line.into()));
            if let Some(o) = v.as_object_mut() {
                o.remove("wall_seconds");
                o.remove("images_per_second");
                if let Some(e) = o.get_mut("experiment").and_then(Value::as_object_mut) {
                    e.remove("epochs");
                }
            }
            v
        })
        .collect()
}

/// A one-epoch experiment on the small CNN with two arms.
pub fn tiny_experiment(dataset: &str, epochs: u64) -> String {
    format!(
        r#"
name = "tiny"
dataset = "{dataset}"
model = "small-cnn"
epochs = {epochs}
batch_size = 25
seeds = [0]

[[arms]]
name = "SGDM"
optimizer = {{ kind = "sgdm" }}
lr = {{ base = 0.05 }}

[[arms]]
name = "AdaExp"
optimizer = {{ kind = "adaexp", p = {{ shape = "linear", start = 0.5, end = 0.0, length = {{ epochs = 2 }} }} }}
lr = {{ base = 1e-3 }}
"#
    )
}

/// Serves each body once, in order, on 127.0.0.1; returns the base URL.
pub fn serve(responses: Vec<Vec<u8>>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for response in responses {
            let Ok((mut stream, _)) = listener.accept() else {
                return;
            };
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            use std::io::Read;
            while !request.ends_with(b"\r\n\r\n") {
                if stream.read(&mut byte).unwrap_or(0) == 0 {
                    break;
                }
                request.push(byte[0]);
            }
            let _ = stream.write_all(&response);
        }
    });
    format!("http://{address}")
}

pub fn http_ok(body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/x-gzip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}
