//! `adaexp data fetch` and `adaexp data subset`, and finding a dataset on disk.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use md5::Md5;
use sha2::{Digest, Sha256};

use super::write_atomic;
use crate::data::{Dataset, Splits, SubsetSizes, cifar, idx};

pub const CIFAR_URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
pub const CIFAR_ARCHIVE: &str = "cifar-10-binary.tar.gz";
pub const CIFAR_BYTES: u64 = 170_052_171;
pub const CIFAR_MD5: &str = "c32a1d4ab5d03f1284b67883e8d87530";
pub const CIFAR_SHA256: &str = "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd";
/// Where `data fetch` puts CIFAR-10 and `run` looks for it.
pub const DEFAULT_DATA_DIR: &str = "data";
/// Where the page loads its subset from.
pub const WEB_DATA_DIR: &str = "www/data";

#[derive(Args, Debug)]
pub struct DataArgs {
    #[command(subcommand)]
    command: DataCommand,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum FetchTarget {
    Cifar10,
}

#[derive(Args, Debug)]
struct SubsetArgs {
    /// Training images in the page's subset (class-balanced).
    #[arg(long, default_value_t = 5000)]
    train: usize,
    /// Test images in the page's subset (class-balanced).
    #[arg(long, default_value_t = 1000)]
    test: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Where to write the subset.
    #[arg(long, value_name = "DIR", default_value = WEB_DATA_DIR)]
    out: PathBuf,
}

#[derive(Subcommand, Debug)]
enum DataCommand {
    /// Download CIFAR-10 (checksummed), extract it, and write the page's subset.
    Fetch {
        #[arg(value_enum)]
        dataset: FetchTarget,
        #[arg(long, value_name = "DIR", default_value = DEFAULT_DATA_DIR)]
        dir: PathBuf,
        #[arg(long, default_value = CIFAR_URL)]
        url: String,
        /// Expected SHA-256 of the archive (for a mirror packed differently).
        #[arg(long, value_name = "HEX", default_value = CIFAR_SHA256)]
        sha256: String,
        /// Expected MD5 of the archive.
        #[arg(long, value_name = "HEX", default_value = CIFAR_MD5)]
        md5: String,
        /// Skip writing the page's subset.
        #[arg(long)]
        no_subset: bool,
        #[command(flatten)]
        subset: SubsetArgs,
    },
    /// Write a class-balanced subset in CIFAR-10 binary format (for the page).
    Subset {
        /// CIFAR-10 directory or archive.
        #[arg(long, value_name = "PATH", default_value = DEFAULT_DATA_DIR)]
        data: PathBuf,
        #[command(flatten)]
        subset: SubsetArgs,
    },
}

pub fn run(args: DataArgs) -> anyhow::Result<()> {
    match args.command {
        DataCommand::Fetch {
            dataset: FetchTarget::Cifar10,
            dir,
            url,
            sha256,
            md5,
            no_subset,
            subset,
        } => {
            if !no_subset {
                subset.validate()?;
            }
            let source = Source {
                url,
                sha256: sha256.to_lowercase(),
                md5: md5.to_lowercase(),
            };
            let splits = fetch_cifar10(&dir, &source)?;
            if !no_subset {
                write_subset(&splits, &subset)?;
            }
            Ok(())
        }
        DataCommand::Subset { data, subset } => {
            subset.validate()?;
            let splits = cifar::load(&data)?;
            write_subset(&splits, &subset)
        }
    }
}

impl SubsetArgs {
    fn validate(&self) -> anyhow::Result<()> {
        for (flag, size) in [("--train", self.train), ("--test", self.test)] {
            if size == 0 {
                bail!("{flag}: must be at least 1 image, got 0");
            }
        }
        Ok(())
    }
}

fn write_subset(splits: &Splits, args: &SubsetArgs) -> anyhow::Result<()> {
    let subset = splits
        .subset(
            SubsetSizes {
                train: Some(args.train),
                val: None,
                test: Some(args.test),
            },
            args.seed,
        )
        .map_err(anyhow::Error::msg)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    write_atomic(
        &args.out.join(cifar::SUBSET_TRAIN_FILE),
        &cifar::to_bytes(&subset.train),
    )?;
    write_atomic(
        &args.out.join(cifar::TEST_FILE),
        &cifar::to_bytes(&subset.test),
    )?;
    println!(
        "subset: {} training and {} test images in {}",
        subset.train.len(),
        subset.test.len(),
        args.out.display()
    );
    Ok(())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 and MD5 of a file, as hex.
fn digests(path: &Path) -> anyhow::Result<(String, String)> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let (mut sha, mut md5) = (Sha256::new(), Md5::new());
    let mut buffer = vec![0; 1 << 20];
    loop {
        let n = file
            .read(&mut buffer)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        sha.update(&buffer[..n]);
        md5.update(&buffer[..n]);
    }
    Ok((hex(&sha.finalize()), hex(&md5.finalize())))
}

/// Where the archive comes from and what it must hash to.
pub struct Source {
    pub url: String,
    pub sha256: String,
    pub md5: String,
}

impl Source {
    /// The official archive, from `ADAEXP_CIFAR10_URL` when set (a mirror or a local copy
    /// served over HTTP; the checksums stay the official ones).
    pub fn official() -> Self {
        Source {
            url: std::env::var("ADAEXP_CIFAR10_URL").unwrap_or_else(|_| CIFAR_URL.into()),
            sha256: CIFAR_SHA256.into(),
            md5: CIFAR_MD5.into(),
        }
    }

    fn verify(&self, path: &Path) -> anyhow::Result<()> {
        let (sha, md5) = digests(path)?;
        if sha != self.sha256 || md5 != self.md5 {
            bail!(
                "checksum mismatch (SHA-256 {sha}, MD5 {md5}; expected SHA-256 {}, MD5 {})",
                self.sha256,
                self.md5
            );
        }
        Ok(())
    }
}

/// Downloads `url` into a temp file beside `target`, renamed only after the checksums match:
/// an interrupted or corrupt download never leaves a file that looks valid.
fn download(source: &Source, target: &Path) -> anyhow::Result<()> {
    let url = source.url.as_str();
    let dir = target.parent().unwrap_or(Path::new("."));
    let mut response = ureq::get(url)
        .call()
        .with_context(|| format!("cannot download {url}"))?;
    let length = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .unwrap_or(CIFAR_BYTES);
    let bar = ProgressBar::new(length).with_style(
        ProgressStyle::with_template(
            "{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_message("downloading CIFAR-10");
    let mut temp = super::temp_beside(target)?;
    let mut reader = response
        .body_mut()
        .with_config()
        .limit(CIFAR_BYTES * 2)
        .reader();
    let mut buffer = vec![0; 1 << 16];
    loop {
        let n = reader
            .read(&mut buffer)
            .with_context(|| format!("download from {url} broke off"))?;
        if n == 0 {
            break;
        }
        temp.write_all(&buffer[..n])
            .with_context(|| format!("cannot write into {}", dir.display()))?;
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    temp.as_file().sync_all()?;
    source
        .verify(temp.path())
        .map_err(|e| anyhow::anyhow!("{url}: {e:#}"))?;
    temp.persist(target)
        .with_context(|| format!("cannot write {}", target.display()))?;
    Ok(())
}

/// The batch files are there and parse.
fn extracted(dir: &Path) -> Option<Splits> {
    dir.join(cifar::ARCHIVE_DIR)
        .is_dir()
        .then(|| cifar::load(dir).ok())
        .flatten()
}

/// Fetches CIFAR-10 into `dir` (archive plus extracted batches), skipping what is already done.
pub fn fetch_cifar10(dir: &Path, source: &Source) -> anyhow::Result<Splits> {
    if let Some(splits) = extracted(dir) {
        println!(
            "CIFAR-10 is already in {}",
            dir.join(cifar::ARCHIVE_DIR).display()
        );
        return Ok(splits);
    }
    let created = !dir.exists();
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let archive = dir.join(CIFAR_ARCHIVE);
    if archive.is_file() && source.verify(&archive).is_ok() {
        println!("{} is already downloaded and verified", archive.display());
    } else if let Err(e) = download(source, &archive) {
        if created {
            // Leave no empty folder behind (remove_dir only removes an empty one).
            let _ = std::fs::remove_dir(dir);
        }
        return Err(e);
    } else {
        println!("downloaded and verified {}", archive.display());
    }
    let file = std::fs::File::open(&archive)
        .with_context(|| format!("cannot read {}", archive.display()))?;
    let shown = archive.display().to_string();
    let files = cifar::read_archive(&shown, std::io::BufReader::new(file))?;
    // Parse before writing anything, so a bad archive leaves no half-extracted folder.
    let splits = cifar::splits_from_files(&shown, &files)?;
    let out = dir.join(cifar::ARCHIVE_DIR);
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    // Only the expected members, under names we choose: nothing in the archive picks a path.
    for name in cifar::TRAIN_FILES.iter().chain([&cifar::TEST_FILE]) {
        write_atomic(&out.join(name), &files[*name])?;
    }
    println!("extracted CIFAR-10 into {}", out.display());
    Ok(splits)
}

/// Where a dataset is looked for when `--data` is not given.
pub fn default_path(dataset: Dataset) -> PathBuf {
    match dataset {
        Dataset::Cifar10 => PathBuf::from(DEFAULT_DATA_DIR),
        Dataset::FashionMnist => {
            let debian = Path::new(idx::DEBIAN_FASHION_MNIST);
            if debian.is_dir() {
                debian.to_path_buf()
            } else {
                Path::new(DEFAULT_DATA_DIR).join("fashion-mnist")
            }
        }
    }
}

/// Loads a dataset from a directory or (CIFAR-10) archive; CIFAR-10 is fetched first when
/// `fetch_missing` and it is not there.
pub fn load(dataset: Dataset, path: &Path, fetch_missing: bool) -> anyhow::Result<Splits> {
    match dataset {
        Dataset::Cifar10 => match cifar::load(path) {
            Ok(splits) => Ok(splits),
            Err(_) if fetch_missing => fetch_cifar10(path, &Source::official()).map_err(|e| {
                anyhow::anyhow!(
                    "{e:#}. CIFAR-10 is not in {} and could not be fetched. Without internet: pass --data PATH with the CIFAR-10 batch files (or cifar-10-binary.tar.gz) copied from elsewhere, or run `--preset fashion-quick`, which needs no download (Debian's dataset-fashion-mnist)",
                    path.display()
                )
            }),
            Err(e) => Err(e.into()),
        },
        Dataset::FashionMnist => Ok(idx::load(path).map_err(|e| {
            anyhow::anyhow!(
                "{e} (Fashion-MNIST: `apt-get install dataset-fashion-mnist`, or pass --data DIR)"
            )
        })?),
    }
}
