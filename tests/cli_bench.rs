//! `adaexp bench` end to end through the binary: the figures a script or a reader takes from it.
// The binary is native: these tests drive it as a process.
#![cfg(not(target_arch = "wasm32"))]

use std::process::Command;

/// What `adaexp ARGS` prints on stdout; it must succeed.
fn printed(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_adaexp"))
        .args(args)
        .output()
        .expect("the adaexp binary runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn train_json_is_one_object_per_model_with_its_figures() {
    let text = printed(&[
        "bench",
        "train",
        "--model",
        "small-cnn",
        "--batch-size",
        "4",
        "--steps",
        "2",
        "--json",
    ]);
    let lines: Vec<&str> = text.lines().collect();
    // Nothing but the JSON: no table header around it.
    assert_eq!(lines.len(), 1, "{text}");
    let figure: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(figure["model"], "small-cnn");
    // 3·32·9 + 2·32 + 32·64·9 + 2·64 + 64·64·9 + 2·64 + 64·10 + 10.
    assert_eq!(figure["params"], 57_130);
    assert_eq!(figure["batch_size"], 4);
    assert_eq!(figure["steps"], 2);
    assert!(
        figure["backend"]
            .as_str()
            .is_some_and(|b| b.starts_with("cpu")),
        "{figure}"
    );
    let configuration: Vec<&str> = figure["configuration"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        configuration.contains(&"cpu-simd"),
        cfg!(feature = "cpu-simd")
    );
    for key in ["first_step_seconds", "images_per_second"] {
        let value = figure[key].as_f64().unwrap();
        assert!(value.is_finite() && value > 0.0, "{key}: {value}");
    }
}

#[test]
fn layers_lists_each_distinct_convolution_of_resnet20_and_the_step_shares() {
    let text = printed(&["bench", "layers", "--batch-size", "2", "--repeats", "1"]);
    // ResNet-20's six distinct 3×3 convolutions, with how often each runs (19 in all).
    let rows: Vec<(&str, usize)> = text
        .lines()
        .filter(|line| line.contains('→'))
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields[0], fields[3].parse().unwrap())
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("3→16", 1),
            ("16→16", 6),
            ("16→32", 1),
            ("32→32", 5),
            ("32→64", 1),
            ("64→64", 5)
        ],
        "{text}"
    );
    for piece in [
        "conv forward",
        "conv input gradient",
        "conv weight gradient",
        "bn + relu forward",
        "bn + relu backward",
        "everything else",
    ] {
        assert!(text.contains(piece), "{piece} missing from\n{text}");
    }
}

#[test]
fn layers_lists_vgg16s_convolutions_with_the_side_each_reads() {
    let text = printed(&[
        "bench",
        "layers",
        "--model",
        "vgg16",
        "--batch-size",
        "1",
        "--repeats",
        "1",
    ]);
    let rows: Vec<(String, usize)> = text
        .lines()
        .filter(|line| line.contains('→'))
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (
                format!("{} {}", fields[0], fields[2]),
                fields[3].parse().unwrap(),
            )
        })
        .collect();
    // Thirteen 3×3 convolutions in five blocks, each block after a 2×2 pool.
    let expected = [
        ("3→64 32²", 1),
        ("64→64 32²", 1),
        ("64→128 16²", 1),
        ("128→128 16²", 1),
        ("128→256 8²", 1),
        ("256→256 8²", 2),
        ("256→512 4²", 1),
        ("512→512 4²", 2),
        ("512→512 2²", 3),
    ];
    let expected: Vec<(String, usize)> = expected
        .iter()
        .map(|&(row, n)| (row.to_owned(), n))
        .collect();
    assert_eq!(rows, expected, "{text}");
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_adaexp"))
        .args(["bench", "layers", "--model", "small-cnn"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("--model"), "{message}");
}

#[test]
fn optim_times_only_the_models_asked_for() {
    let text = printed(&["bench", "optim", "--steps", "1", "--model", "resnet20"]);
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip(2)
        .map(|line| line.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 1, "{text}");
    let row = &rows[0];
    assert_eq!(row[..2], ["resnet20", "269722"], "{text}");
    // Adam's ms, AdaExp's at p = ½ with its ratio, mid-decay with its ratio.
    let figures: Vec<f64> = row[2..].iter().map(|f| f.parse().unwrap()).collect();
    assert_eq!(figures.len(), 5, "{text}");
    assert!(figures.iter().all(|f| f.is_finite() && *f > 0.0), "{text}");
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-3 + 1e-2 * b;
    assert!(close(figures[2], figures[1] / figures[0]), "{text}");
    assert!(close(figures[4], figures[3] / figures[0]), "{text}");
}
