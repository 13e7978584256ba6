//! `adaexp bench`: one optimizer step of AdaExp vs Burn's own Adam on ResNet-20's and VGG-16's
//! parameters (`optim`), training throughput per model (`train`, also as JSON), where a
//! ResNet-20 step spends its time (`layers`), and the cost of a mid-epoch checkpoint
//! (`checkpoint`), on the backend asked for.

mod layers;

use std::time::{Duration, Instant};

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Distribution, Tensor};
use clap::{Args, Subcommand};

use rand::{RngCore, SeedableRng};

use super::backend::Backend;
use crate::data::{Dataset, ImageSet, ImageShape, Splits};
use crate::model::{Model, ModelSpec};
use crate::optim::spec::{AdaExpSpec, SgdmSpec};
use crate::optim::{Length, LrSchedule, OptimizerSpec, Schedule};
use crate::train::{ArmSpec, ExperimentSpec, Session};

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    target: BenchTarget,
}

#[derive(Subcommand, Debug)]
enum BenchTarget {
    /// Time of one optimizer step: AdaExp vs Burn's Adam.
    Optim {
        /// Timed steps per optimizer (after 2 warm-up steps), the three optimizers taking
        /// turns step by step; the median is reported.
        #[arg(long, default_value_t = 10)]
        steps: usize,
        /// Whose parameters are stepped.
        #[arg(long, value_enum, value_delimiter = ',', default_values_t = [ModelSpec::Resnet20, ModelSpec::Vgg16])]
        model: Vec<ModelSpec>,
        #[arg(long, value_enum, default_value_t = Backend::Cpu)]
        backend: Backend,
    },
    /// Training throughput (images/s) per model and backend, on synthetic CIFAR-sized data.
    Train {
        /// Models to time.
        #[arg(long, value_enum, value_delimiter = ',', default_values_t = [ModelSpec::SmallCnn, ModelSpec::Resnet20])]
        model: Vec<ModelSpec>,
        #[arg(long, value_enum, default_value_t = Backend::Cpu)]
        backend: Backend,
        #[arg(long, default_value_t = 64)]
        batch_size: usize,
        /// Timed training steps (after one warm-up step).
        #[arg(long, default_value_t = 10)]
        steps: usize,
        /// One JSON object per model on stdout instead of the table (for scripts and tables
        /// across machines).
        #[arg(long)]
        json: bool,
    },
    /// Where a training step spends its time: each convolution's forward pass and gradients,
    /// batch norm + ReLU, against the whole step.
    Layers {
        /// The network (resnet20 or vgg16: the small CNN's layers are VGG's first kind).
        #[arg(long, value_enum, default_value_t = ModelSpec::Resnet20)]
        model: ModelSpec,
        #[arg(long, value_enum, default_value_t = Backend::Cpu)]
        backend: Backend,
        #[arg(long, default_value_t = 64)]
        batch_size: usize,
        /// Timed calls per piece (after two warm-up calls); the median is reported.
        #[arg(long, default_value_t = 10)]
        repeats: usize,
    },
    /// What a checkpoint costs mid-epoch (as a preempted run writes it): taking it off the
    /// device, writing it (synced) and reading it back, for every arm of a preset.
    Checkpoint {
        /// The preset whose arms and model are checkpointed.
        #[arg(long, default_value = "seed-vgg16")]
        preset: String,
        /// Only these arms (a sweep shard's checkpoint) [default: all].
        #[arg(long, value_name = "NAME[,NAME…]", value_delimiter = ',')]
        arms: Option<Vec<String>>,
        #[arg(long, value_enum, default_value_t = Backend::Cpu)]
        backend: Backend,
        #[arg(long, default_value_t = 16)]
        batch_size: usize,
        /// Where the checkpoint file is written (a cluster's scratch or home may be slower)
        /// [default: a temp folder].
        #[arg(long, value_name = "DIR")]
        dir: Option<std::path::PathBuf>,
    },
}

/// Random CIFAR-shaped images for `steps` batches plus one (so no epoch ends inside a
/// measurement), and one test image.
fn synthetic_splits(batch_size: usize, steps: usize) -> Splits {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let n = batch_size * (steps + 1);
    let shape = ImageShape::CIFAR;
    let mut images = vec![0u8; n * shape.pixels()];
    rng.fill_bytes(&mut images);
    let labels = (0..n).map(|i| (i % 10) as u8).collect();
    let train = ImageSet {
        shape,
        images,
        labels,
    };
    let test = train.select(&[0]);
    Splits::new(train, test)
}

/// Images/s of one SGDM arm training `model`: the session's own step, on random images.
fn train_throughput(
    model: ModelSpec,
    device: &Device,
    batch_size: usize,
    steps: usize,
) -> anyhow::Result<(usize, f64, f64)> {
    // The warm-up and timed steps.
    let splits = synthetic_splits(batch_size, steps + 1);
    let spec = ExperimentSpec {
        name: "bench".into(),
        description: String::new(),
        dataset: Dataset::Cifar10,
        train_size: None,
        test_size: None,
        val_size: None,
        subset_seed: 0,
        model,
        epochs: 1,
        batch_size,
        seeds: vec![0],
        augment: true,
        arms: vec![ArmSpec {
            name: "sgdm".into(),
            family: None,
            optimizer: OptimizerSpec::Sgdm(SgdmSpec::default()),
            lr: LrSchedule::constant(0.01).into(),
        }],
    };
    let mut session = Session::new(spec, 0, splits, device.clone())?;
    let params = model.init(3, device, 0).trainable_params();
    let first = Instant::now();
    pollster::block_on(session.step())?;
    let first_step = first.elapsed().as_secs_f64();
    let start = Instant::now();
    for _ in 0..steps {
        pollster::block_on(session.step())?;
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok((params, first_step, (steps * batch_size) as f64 / seconds))
}

/// One model's training throughput, as `bench train` prints it (a table row, or a JSON object
/// with `--json`).
#[derive(Debug, serde::Serialize)]
struct TrainFigure<'a> {
    model: &'a str,
    params: usize,
    /// The device, in words.
    backend: &'a str,
    /// The build's speed-relevant cargo features that are on.
    configuration: &'a [&'static str],
    batch_size: usize,
    /// Timed steps, after the first.
    steps: usize,
    /// On a GPU, mostly kernel compilation (and autotuning, where it is on).
    first_step_seconds: f64,
    images_per_second: f64,
}

impl std::fmt::Display for TrainFigure<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<10} {:>10} {:>14.2} {:>12.1}",
            self.model, self.params, self.first_step_seconds, self.images_per_second
        )
    }
}

/// Gradients of the shapes of `model`'s trained parameters, drawn from N(0, 1).
fn gradients(model: &Model, device: &Device) -> GradientsParams {
    struct Draw<'a> {
        grads: GradientsParams,
        device: &'a Device,
    }
    impl ModuleVisitor for Draw<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if param.val().is_require_grad() {
                let shape = param.val().shape();
                let grad = Tensor::<D>::random(shape, Distribution::Normal(0.0, 1.0), self.device);
                self.grads.register(param.id, grad);
            }
        }
    }
    let mut draw = Draw {
        grads: GradientsParams::new(),
        device,
    };
    model.visit(&mut draw);
    draw.grads
}

/// Reads one trained value back, so that the step has really run when it returns.
fn read_back(model: &Model) {
    struct First(bool);
    impl ModuleVisitor for First {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if !self.0 && param.val().is_require_grad() {
                let _ = param.val().flatten::<1>(0, D - 1).slice(0..1).into_data();
                self.0 = true;
            }
        }
    }
    model.visit(&mut First(false));
}

/// Median wall time of one `ModuleOptimizer::step` of each optimizer over `steps` timed steps,
/// each on its own copy of `model`. The optimizers take turns step by step, so that what slows
/// the machine for a while (another process, the clock) slows each of them alike.
fn time_steps<const N: usize>(
    optimizers: [ModuleOptimizer; N],
    model: &Model,
    steps: usize,
    device: &Device,
) -> [Duration; N] {
    let mut arms = optimizers.map(|optimizer| (optimizer, Some(model.clone()), Vec::new()));
    for i in 0..steps + 2 {
        for (optimizer, model, times) in &mut arms {
            let stepped = model
                .take()
                .expect("each arm's model is put back after its step");
            let grads = gradients(&stepped, device);
            let start = Instant::now();
            let stepped = optimizer.step(1e-3, stepped, grads);
            read_back(&stepped);
            if i >= 2 {
                times.push(start.elapsed());
            }
            *model = Some(stepped);
        }
    }
    arms.map(|(_, _, times)| median(times))
}

/// The middle of some (non-empty) timings.
fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// Seconds to take a checkpoint mid-epoch, write it, and read it back into a session.
fn bench_checkpoint(
    preset: &str,
    arms: Option<&[String]>,
    backend: Backend,
    batch_size: usize,
    dir: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let chosen = super::backend::choose(backend)?;
    let mut spec = super::experiment::load(None, Some(preset))?;
    if let Some(arms) = arms {
        spec = spec
            .select_arms(arms)
            .map_err(|e| anyhow::anyhow!("--arms: {}", e.message))?;
    }
    spec.train_size = None;
    spec.test_size = None;
    let splits = synthetic_splits(batch_size, 2);
    spec.batch_size = batch_size;
    let new_session = || Session::new(spec.clone(), 0, splits.clone(), chosen.device.clone());
    let mut session = new_session()?;
    for _ in 0..2 {
        pollster::block_on(session.step())?;
    }
    let temp = tempfile::tempdir()?;
    let path = dir.unwrap_or(temp.path()).join("bench.checkpoint");
    let info = session.run_info(&chosen.name);

    let started = Instant::now();
    pollster::block_on(session.settle_all())?;
    let checkpoint = session.checkpoint()?;
    let take = started.elapsed().as_secs_f64();
    let started = Instant::now();
    super::results::save_checkpoint(
        &path,
        &info,
        &super::results::Synced::nothing(),
        &checkpoint,
    )?;
    let write = started.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(&path)?.len();
    drop(checkpoint);
    let started = Instant::now();
    let (_, loaded) = super::results::load_checkpoint(&path)?;
    let mut resumed = new_session()?;
    resumed.restore(loaded)?;
    let read = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&path);
    println!(
        "checkpoint mid-epoch of '{preset}' ({}, {} arms), backend {}, file in {}",
        spec.model.name(),
        spec.arms.len(),
        chosen.name,
        path.parent().unwrap_or(&path).display()
    );
    println!(
        "{:>10} {:>12} {:>12} {:>18}",
        "MB", "take s", "write s", "read + restore s"
    );
    println!(
        "{:>10.1} {:>12.2} {:>12.2} {:>18.2}",
        bytes as f64 / 1e6,
        take,
        write,
        read
    );
    Ok(())
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.target {
        BenchTarget::Checkpoint {
            preset,
            arms,
            backend,
            batch_size,
            dir,
        } => bench_checkpoint(
            &preset,
            arms.as_deref(),
            backend,
            batch_size.max(1),
            dir.as_deref(),
        ),
        BenchTarget::Optim {
            steps,
            model,
            backend,
        } => bench_optim(steps.max(1), &model, backend),
        BenchTarget::Layers {
            model,
            backend,
            batch_size,
            repeats,
        } => {
            let chosen = super::backend::choose(backend)?;
            let (batch_size, repeats) = (batch_size.max(1), repeats.max(1));
            let convolutions = layers::convolutions(model, &chosen.device)?;
            let (_, _, images_per_second) =
                train_throughput(model, &chosen.device, batch_size, repeats)?;
            let step = Duration::from_secs_f64(batch_size as f64 / images_per_second);
            layers::report(
                model,
                convolutions,
                batch_size,
                repeats,
                &chosen.device,
                &chosen.name,
                step,
            )
        }
        BenchTarget::Train {
            model,
            backend,
            batch_size,
            steps,
            json,
        } => {
            let chosen = super::backend::choose(backend)?;
            let (batch_size, steps) = (batch_size.max(1), steps.max(1));
            let configuration = super::backend::build_configuration();
            if !json {
                println!(
                    "training throughput, batch {batch_size}, {steps} timed steps, backend {}, \
                     build [{}]",
                    chosen.name,
                    configuration.join(", ")
                );
                // The first step stands apart: on a GPU it compiles and autotunes the kernels.
                println!(
                    "{:<10} {:>10} {:>14} {:>12}",
                    "model", "params", "first step s", "images/s"
                );
            }
            for model in model {
                let (params, first_step_seconds, images_per_second) =
                    train_throughput(model, &chosen.device, batch_size, steps)?;
                let figure = TrainFigure {
                    model: model.name(),
                    params,
                    backend: &chosen.name,
                    configuration: &configuration,
                    batch_size,
                    steps,
                    first_step_seconds,
                    images_per_second,
                };
                if json {
                    println!("{}", serde_json::to_string(&figure)?);
                } else {
                    println!("{figure}");
                }
            }
            Ok(())
        }
    }
}

fn bench_optim(steps: usize, models: &[ModelSpec], backend: Backend) -> anyhow::Result<()> {
    // The module optimizer works on autodiff parameters, as in training.
    let chosen = super::backend::choose(backend)?;
    let device = chosen.device;
    let adaexp = |p: Schedule| OptimizerSpec::AdaExp(AdaExpSpec::new(p));
    let decaying = adaexp(Schedule::Linear {
        start: 0.5,
        end: 0.0,
        length: Length::Steps(1000),
    });
    let at_half = adaexp(Schedule::constant(0.5));
    println!(
        "optimizer step on {}, median of {steps} steps each (after 2 warm-up steps), taking turns",
        chosen.name
    );
    println!(
        "{:<10} {:>10} {:>14} {:>16} {:>8} {:>16} {:>8}",
        "params", "count", "burn adam ms", "adaexp p=.5 ms", "ratio", "adaexp p(t) ms", "ratio"
    );
    for model in models {
        let name = model.name();
        let network = model.init(3, &device, 0);
        let count = network.trainable_params();
        let burn_adam = AdamConfig::new().with_epsilon(1e-8).init();
        let [reference, half, scheduled] = time_steps(
            [
                burn_adam,
                at_half.build(1).optimizer,
                decaying.build(1).optimizer,
            ],
            &network,
            steps,
            &device,
        );
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "{:<10} {:>10} {:>14.3} {:>16.3} {:>8.3} {:>16.3} {:>8.3}",
            name,
            count,
            ms(reference),
            ms(half),
            ms(half) / ms(reference),
            ms(scheduled),
            ms(scheduled) / ms(reference),
        );
    }
    Ok(())
}
