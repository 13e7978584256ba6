//! `adaexp trace` end to end through the binary.
// The binary is native: these tests drive it as a process.
#![cfg(not(target_arch = "wasm32"))]

use std::process::{Command, Output};

fn adaexp(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_adaexp"))
        .args(args)
        .output()
        .expect("the adaexp binary runs")
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

const ROSENBROCK_ADAM: [&str; 9] = [
    "trace",
    "--function",
    "rosenbrock",
    "--start=-1.5,2",
    "--steps",
    "25",
    "--optimizer",
    "adam",
    "--lr=0.01",
];

#[test]
fn csv_has_the_header_and_one_row_per_step() {
    let text = stdout(&adaexp(&ROSENBROCK_ADAM));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "step,x,y,loss,p");
    assert_eq!(lines.len(), 1 + 25);
    let first: Vec<f64> = lines[1].split(',').map(|v| v.parse().unwrap()).collect();
    // ∇f(−1.5, 2) = (−155, −50): Adam's first step is +lr on both coordinates.
    assert_eq!(first[0], 1.0);
    assert!((first[1] - -1.49).abs() < 1e-6, "{first:?}");
    assert!((first[2] - 2.01).abs() < 1e-6, "{first:?}");
    // f(−1.49, 2.01) = 2.49² + 100·(2.01 − 1.49²)² = 10.614301.
    assert!((first[3] - 10.614301).abs() < 1e-4, "{first:?}");
    assert_eq!(first[4], 0.5);
    assert!(lines[25].starts_with("25,"));
}

#[test]
fn sgdm_rows_leave_p_empty_and_follow_gradient_descent() {
    let text = stdout(&adaexp(&[
        "trace",
        "--function",
        "quadratic",
        "--start",
        "1,1",
        "--steps",
        "3",
        "--optimizer",
        "sgdm",
        "--momentum",
        "0",
    ]));
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 3);
    // ∇f = (x, 100y): x ← 0.99x each step; y ← y − 0.01·100y = 0.
    let x: f64 = rows[2][1].parse().unwrap();
    assert!((x - 0.99f64.powi(3)).abs() < 1e-6, "{x}");
    assert_eq!(rows[0][2].parse::<f64>().unwrap(), 0.0);
    assert!(rows.iter().all(|r| r[4].is_empty()));
}

#[test]
fn adaexp_p_column_follows_the_schedule() {
    let p_column = |shape: &str| -> Vec<f64> {
        let text = stdout(&adaexp(&[
            "trace",
            "--function",
            "quadratic",
            "--start",
            "1,1",
            "--steps",
            "5",
            "--optimizer",
            "adaexp",
            "--p-start",
            "0.5",
            "--p-end",
            "0.1",
            "--decay-steps",
            "4",
            "--p-schedule",
            shape,
        ]));
        text.lines()
            .skip(1)
            .map(|l| l.rsplit(',').next().unwrap().parse().unwrap())
            .collect()
    };
    // Linear: s = (t − 1)/4; step: p-start until s ≥ ½ (step 3), then p-end.
    for (shape, expected) in [
        ("linear", [0.5, 0.4, 0.3, 0.2, 0.1]),
        ("step", [0.5, 0.5, 0.1, 0.1, 0.1]),
    ] {
        let p = p_column(shape);
        assert_eq!(p.len(), 5);
        for (a, e) in p.iter().zip(expected) {
            assert!((a - e).abs() < 1e-12, "{shape}: {p:?}");
        }
    }
}

#[test]
fn json_holds_rows_and_spec_and_output_file_matches() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trace.json");
    let mut args = ROSENBROCK_ADAM.to_vec();
    args.extend(["--format", "json"]);
    let printed = stdout(&adaexp(&args));
    let value: serde_json::Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(value["rows"].as_array().unwrap().len(), 25);
    assert_eq!(value["spec"]["optimizer"]["kind"], "adam");
    assert_eq!(value["spec"]["function"], "rosenbrock");

    args.extend(["--output", path.to_str().unwrap()]);
    let quiet = stdout(&adaexp(&args));
    assert!(quiet.is_empty());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), printed);
}

/// Each bad invocation must fail with one line on stderr that names the flag.
#[test]
fn bad_flags_fail_with_one_line_naming_the_flag() {
    let base = [
        "trace",
        "--function",
        "rosenbrock",
        "--start",
        "0,0",
        "--steps",
        "10",
    ];
    let cases: &[(&[&str], &str)] = &[
        (&["--optimizer", "adam", "--bogus"], "--bogus"),
        (&["--optimizer", "adam", "--beta2", "1.5"], "--beta2"),
        (&["--optimizer", "adam", "--beta1", "nan"], "--beta1"),
        (&["--optimizer", "adam", "--lr", "-1"], "--lr"),
        (&["--optimizer", "adam", "--lr", "abc"], "--lr"),
        (&["--optimizer", "adam", "--eps", "0"], "--eps"),
        (&["--optimizer", "padam", "--p", "1.5"], "--p"),
        (&["--optimizer", "adaexp", "--p-end", "2"], "--p-end"),
        (&["--optimizer", "adaexp", "--p-start", "-0.1"], "--p-start"),
        (
            &["--optimizer", "adaexp", "--decay-steps", "0"],
            "--decay-steps",
        ),
        (&["--optimizer", "adam", "--momentum", "0.5"], "--momentum"),
        (&["--optimizer", "sgdm", "--momentum", "1"], "--momentum"),
        (&["--optimizer", "rmsprop"], "--optimizer"),
        (&["--optimizer", "adam", "--format", "xml"], "--format"),
    ];
    for (extra, flag) in cases {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        let output = adaexp(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} succeeded");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(flag), "{args:?}: {stderr}");
    }

    let missing = adaexp(&[
        "trace",
        "--start",
        "0,0",
        "--steps",
        "3",
        "--optimizer",
        "adam",
    ]);
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(!missing.status.success());
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--function"), "{stderr}");

    let point = adaexp(&[
        "trace",
        "--function",
        "quadratic",
        "--start",
        "1",
        "--steps",
        "3",
        "--optimizer",
        "adam",
    ]);
    let stderr = String::from_utf8_lossy(&point.stderr);
    assert!(!point.status.success());
    assert!(stderr.contains("--start"), "{stderr}");
}

#[test]
fn limits_are_errors_that_say_the_limit() {
    let run = |steps: &str, start: &str| {
        adaexp(&[
            "trace",
            "--function",
            "rosenbrock",
            &format!("--start={start}"),
            "--steps",
            steps,
            "--optimizer",
            "adam",
        ])
    };
    for steps in ["1000000000", "18446744073709551615"] {
        let output = run(steps, "0,0");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "--steps {steps} succeeded");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains("--steps") && stderr.contains("1..=1000000"),
            "{stderr}"
        );
    }
    // Finite in f64, but f = 1e1202 is infinite in the f32 the trace computes in.
    let output = run("10", "1e300,1e300");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("--start") && stderr.contains("f32"),
        "{stderr}"
    );
    // The largest start whose value f32 holds still traces, with finite rows.
    let output = run("3", "100,0");
    assert!(output.status.success(), "{output:?}");
}
