//! `adaexp trace`: flags → `TraceSpec` → rows → CSV or JSON.

use std::path::PathBuf;

use anyhow::{Context, bail};
use burn::tensor::Device;
use clap::{Args, ValueEnum};
use serde::Serialize;

use super::experiment;
use crate::optim::{Family, FlatOptimizer, Length, LrSchedule, Shape, WeightDecay};
use crate::trace::{TestFunction, TraceRow, TraceSpec, run_trace};
use crate::validation::{ExponentField, Field, OptimizerField};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    Csv,
    Json,
}

#[derive(Args, Debug)]
pub struct TraceArgs {
    #[arg(long, value_enum)]
    function: TestFunction,
    /// Starting point as X,Y (e.g. --start=-1.5,2).
    #[arg(long, value_name = "X,Y", value_parser = parse_point, allow_hyphen_values = true)]
    start: [f64; 2],
    #[arg(long, value_name = "N")]
    steps: u64,
    #[arg(long, value_enum)]
    optimizer: Family,
    #[arg(
        long,
        value_name = "F",
        allow_negative_numbers = true,
        default_value_t = 0.01
    )]
    lr: f64,
    /// SGDM momentum μ [default: 0.9].
    #[arg(long, value_name = "F", allow_negative_numbers = true)]
    momentum: Option<f64>,
    /// SGDM with Nesterov momentum.
    #[arg(long)]
    nesterov: bool,
    /// [default: 0.9]
    #[arg(long, value_name = "F", allow_negative_numbers = true)]
    beta1: Option<f64>,
    /// [default: 0.999]
    #[arg(long, value_name = "F", allow_negative_numbers = true)]
    beta2: Option<f64>,
    /// [default: 1e-8]
    #[arg(long, value_name = "F", allow_negative_numbers = true)]
    eps: Option<f64>,
    /// Keep the running max of v̂ (on by default for padam; `--amsgrad false` turns it off).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    amsgrad: Option<bool>,
    /// Padam's constant exponent [default: 0.125].
    #[arg(long, value_name = "F", allow_negative_numbers = true)]
    p: Option<f64>,
    #[arg(
        long,
        value_name = "F",
        allow_negative_numbers = true,
        default_value_t = 0.5
    )]
    p_start: f64,
    #[arg(
        long,
        value_name = "F",
        allow_negative_numbers = true,
        default_value_t = 0.0
    )]
    p_end: f64,
    #[arg(long, value_enum, default_value_t = Shape::Linear)]
    p_schedule: Shape,
    /// Length of the p schedule in steps [default: --steps].
    #[arg(long, value_name = "N")]
    decay_steps: Option<u64>,
    /// Weight decay λ (coupled L2 unless --decoupled).
    #[arg(long, value_name = "F", allow_negative_numbers = true)]
    weight_decay: Option<f64>,
    /// Decoupled weight decay: θ ← θ − η·λ·θ.
    #[arg(long, requires = "weight_decay")]
    decoupled: bool,
    #[arg(long, value_enum, default_value_t = Format::Csv)]
    format: Format,
    /// Write here instead of stdout (atomically).
    #[arg(long, value_name = "PATH")]
    output: Option<PathBuf>,
}

fn parse_point(text: &str) -> Result<[f64; 2], String> {
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    let [x, y] = parts.as_slice() else {
        return Err(format!("expected X,Y (two numbers), got '{text}'"));
    };
    let number = |s: &str| {
        s.parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("expected X,Y (two finite numbers), got '{text}'"))
    };
    Ok([number(x)?, number(y)?])
}

impl TraceArgs {
    /// Flags that only make sense for some optimizers, with the optimizers they belong to.
    fn misplaced_flag(&self) -> Option<(&'static str, &'static str)> {
        use Family::*;
        let adaptive = !matches!(self.optimizer, Sgdm);
        let checks = [
            ("--momentum", self.momentum.is_some(), !adaptive, "sgdm"),
            ("--nesterov", self.nesterov, !adaptive, "sgdm"),
            (
                "--beta1",
                self.beta1.is_some(),
                adaptive,
                "adam, padam, adaexp",
            ),
            (
                "--beta2",
                self.beta2.is_some(),
                adaptive,
                "adam, padam, adaexp",
            ),
            ("--eps", self.eps.is_some(), adaptive, "adam, padam, adaexp"),
            (
                "--amsgrad",
                self.amsgrad.is_some(),
                adaptive,
                "adam, padam, adaexp",
            ),
            (
                "--p",
                self.p.is_some(),
                matches!(self.optimizer, Padam),
                "padam",
            ),
        ];
        checks
            .into_iter()
            .find(|(_, given, allowed, _)| *given && !allowed)
            .map(|(flag, _, _, owners)| (flag, owners))
    }

    fn spec(&self) -> anyhow::Result<TraceSpec> {
        if let Some((flag, owners)) = self.misplaced_flag() {
            bail!("{flag}: applies only to --optimizer {owners}");
        }
        let weight_decay = self.weight_decay.map(|lambda| {
            if self.decoupled {
                WeightDecay::Decoupled(lambda)
            } else {
                WeightDecay::L2(lambda)
            }
        });
        let length = Length::Steps(self.decay_steps.unwrap_or(self.steps));
        let optimizer = self.optimizer.spec(&FlatOptimizer {
            momentum: self.momentum,
            nesterov: self.nesterov,
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            amsgrad: self.amsgrad,
            p: self.p,
            exponent: Some(self.p_schedule.schedule(self.p_start, self.p_end, length)),
            weight_decay,
        });
        let spec = TraceSpec {
            function: self.function,
            start: self.start,
            steps: self.steps,
            optimizer,
            lr: LrSchedule::constant(self.lr),
        };
        spec.validate()
            .map_err(|error| match (self.optimizer, error.field) {
                // AdaExp's constant shape is --p-start held: --p is Padam's.
                (Family::Adaexp, Field::Optimizer(OptimizerField::P(ExponentField::Value))) => {
                    anyhow::anyhow!("--p-start: {}", error.message)
                }
                _ => experiment::flagged(error),
            })?;
        Ok(spec)
    }
}

#[derive(Serialize)]
struct TraceOutput<'a> {
    spec: &'a TraceSpec,
    rows: &'a [TraceRow],
}

fn to_csv(rows: &[TraceRow]) -> anyhow::Result<Vec<u8>> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(["step", "x", "y", "loss", "p"])?;
    for row in rows {
        writer.write_record([
            row.step.to_string(),
            row.x.to_string(),
            row.y.to_string(),
            row.loss.to_string(),
            row.p.map(|p| p.to_string()).unwrap_or_default(),
        ])?;
    }
    writer.into_inner().context("cannot finish the CSV")
}

pub fn run(args: TraceArgs) -> anyhow::Result<()> {
    let spec = args.spec()?;
    let rows = run_trace(&spec, &Device::flex().autodiff())?;
    let bytes = match args.format {
        Format::Csv => to_csv(&rows)?,
        Format::Json => {
            let mut json = serde_json::to_vec_pretty(&TraceOutput {
                spec: &spec,
                rows: &rows,
            })?;
            json.push(b'\n');
            json
        }
    };
    match &args.output {
        Some(path) => super::write_atomic(path, &bytes),
        None => {
            use std::io::Write;
            std::io::stdout()
                .write_all(&bytes)
                .context("cannot write to stdout")
        }
    }
}
