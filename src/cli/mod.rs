//! The native command line: clap commands and their output files.

mod backend;
mod bench;
mod data;
mod experiment;
mod figures;
mod halt;
mod interrupt;
mod layout;
mod output;
mod plot;
mod results;
mod run;
mod sweep;
mod trace;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use output::{remove_stale_temps, temp_beside, write_atomic};

#[derive(Parser, Debug)]
#[command(
    name = "adaexp",
    version,
    about = "Decaying Adam's second-moment exponent toward SGDM"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train every arm of an experiment, for each seed; write results and plots.
    Run(run::RunArgs),
    /// Spread an experiment's seeds × arms over a Slurm cluster as a job array (or run the same
    /// shards here); `sweep status DIR` shows where they stand.
    Sweep(sweep::SweepArgs),
    /// Plot result files (and print their summary table); a sweep's folder merges its shards.
    Plot(plot::PlotArgs),
    /// Fetch datasets and write the page's subset.
    Data(data::DataArgs),
    /// Run one optimizer on a 2-D test function and print its trajectory.
    Trace(trace::TraceArgs),
    /// Time the optimizers or training.
    Bench(bench::BenchArgs),
}

/// Clap's own messages span several lines (usage, tips); scripts want one line naming the flag.
fn one_line(err: &clap::Error) -> String {
    let rendered = err.render().to_string();
    let message: Vec<&str> = rendered
        .lines()
        .take_while(|line| !line.starts_with("Usage:"))
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("tip:"))
        .collect();
    message.join(" ")
}

/// Training allocates and frees the same few-megabyte activations at every step. glibc's
/// defaults hand blocks over 128 KiB (a threshold that adapts upward only as far as the sizes
/// freed so far) back to the kernel with `munmap`, and trim freed memory at the heap's top, so
/// that each step faults in and zeroes its memory again: 780,000 page faults in 22 ResNet-20
/// steps, 12 % of the time in the kernel. Kept in the heap (blocks up to 32 MiB, glibc's
/// ceiling for this threshold; no trimming), a step reuses the last one's memory: 43,000 faults
/// and 10–25 % more images/s (README, "Benchmarks"). The process keeps its peak heap, which
/// training reaches at every step anyway.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called at start-up, before any thread
    // exists or any large block is allocated.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX);
    }
}

/// Parses the arguments, runs the command and reports any error as one line on stderr.
pub fn main() -> ExitCode {
    // Rust ignores SIGPIPE, so `println!` into a closed pipe (`adaexp sweep status DIR | head`)
    // panics. Like other command-line tools, end quietly instead; files are written through
    // temporary files and renames, so an end at any write leaves no file half-written.
    #[cfg(unix)]
    // SAFETY: sets a signal disposition at start-up, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    keep_freed_memory();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) if !err.use_stderr() => {
            // --help and --version.
            let _ = err.print();
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            eprintln!("{}", one_line(&err));
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Sweep(args) => sweep::run(args),
        Command::Plot(args) => plot::run(args),
        Command::Data(args) => data::run(args),
        Command::Trace(args) => trace::run(args),
        Command::Bench(args) => bench::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if err.is::<interrupt::Interrupted>() => {
            eprintln!("{err}");
            ExitCode::from(interrupt::EXIT_INTERRUPTED)
        }
        Err(err) => {
            // `{:#}` joins anyhow's context chain on one line.
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
