//! Reading result files back: every record, or only the run header.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use anyhow::{Context, bail};

use crate::train::{Record, RunInfo};

/// The longest line a result file may hold: a `run` header with a large experiment is a few
/// KB; anything longer is not a result record, and reading it whole could exhaust memory.
const MAX_LINE_BYTES: u64 = 1 << 20;

/// Reads a JSONL result file; errors name the file and line.
pub fn read_records(path: &Path) -> anyhow::Result<Vec<Record>> {
    let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse_records(&path.display().to_string(), BufReader::new(file))
}

/// Parses result records; `name` names the source in errors. The run header's experiment is
/// validated like any other (its name becomes file names when plotting).
pub fn parse_records(name: &str, mut reader: impl BufRead) -> anyhow::Result<Vec<Record>> {
    let mut records = Vec::new();
    let mut line = Vec::new();
    for number in 1.. {
        line.clear();
        let read = (&mut reader)
            .take(MAX_LINE_BYTES + 1)
            .read_until(b'\n', &mut line)
            .with_context(|| format!("cannot read {name}"))?;
        if read == 0 {
            break;
        }
        if line.len() as u64 > MAX_LINE_BYTES {
            bail!("{name} line {number}: longer than {MAX_LINE_BYTES} bytes; not a result record");
        }
        if line.trim_ascii().is_empty() {
            continue;
        }
        let record: Record = match serde_json::from_slice(&line) {
            Ok(record) => record,
            // A run killed mid-write leaves half a line at the end; the rest stands.
            Err(_) if !line.ends_with(b"\n") && !records.is_empty() => {
                eprintln!(
                    "note: {name} line {number}: ignoring an incomplete last line (the run was interrupted while writing it)"
                );
                break;
            }
            Err(e) => {
                return Err(anyhow::Error::new(e)
                    .context(format!("{name} line {number}: not a result record")));
            }
        };
        if let Record::Run(info) = &record {
            info.experiment
                .validate()
                .map_err(|e| anyhow::anyhow!("{name} line {number}: experiment: {e}"))?;
        }
        records.push(record);
    }
    if !matches!(records.first(), Some(Record::Run(_))) {
        bail!("{name}: does not start with a run header (is it an adaexp result file?)");
    }
    Ok(records)
}

/// The run header of a result file: `None` when the file has no complete first line yet (a run
/// killed while writing it); an error when the first line is not a run header.
pub fn read_header(path: &Path) -> anyhow::Result<Option<RunInfo>> {
    let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut line = Vec::new();
    BufReader::new(file)
        .take(MAX_LINE_BYTES + 1)
        .read_until(b'\n', &mut line)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if !line.ends_with(b"\n") && (line.len() as u64) <= MAX_LINE_BYTES {
        return Ok(None);
    }
    match serde_json::from_slice(&line) {
        Ok(Record::Run(info)) => Ok(Some(info)),
        _ => bail!(
            "{}: does not start with a run header (is it an adaexp result file?)",
            path.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::cli::experiment::{PRESETS, parse};
    use crate::fuzz::{config, mutated};

    fn run_info() -> RunInfo {
        RunInfo::example(parse("quick", PRESETS[0].1).unwrap(), 0, 4, 100, 30)
    }
    use crate::train::{RunInfo, StepRecord};

    fn records_bytes() -> Vec<u8> {
        let mut out = serde_json::to_vec(&Record::Run(run_info())).unwrap();
        out.push(b'\n');
        for step in 1..=3 {
            out.extend(
                serde_json::to_vec(&Record::Step(StepRecord {
                    arm: "SGDM".into(),
                    step,
                    epoch: 1,
                    loss: 2.3,
                    p: None,
                    lr: 0.05,
                    update_rms: Some(0.01),
                }))
                .unwrap(),
            );
            out.push(b'\n');
        }
        out
    }

    #[test]
    fn the_pages_export_reads_back_as_a_result_file() {
        let records = parse_records("r", &records_bytes()[..]).unwrap();
        let text = crate::train::export::result_file(&run_info(), &records[1..]).unwrap();
        assert_eq!(text.as_bytes(), &records_bytes()[..]);
        assert_eq!(parse_records("export", text.as_bytes()).unwrap(), records);
    }

    #[test]
    fn an_interrupted_last_line_is_dropped_and_others_are_errors() {
        let mut bytes = records_bytes();
        let full = parse_records("r", &bytes[..]).unwrap().len();
        bytes.truncate(bytes.len() - 10);
        assert_eq!(parse_records("r", &bytes[..]).unwrap().len(), full - 1);
        // The same damage in the middle is an error naming the line.
        let mut bytes = records_bytes();
        let second = bytes.iter().position(|&b| b == b'\n').unwrap() + 5;
        bytes[second] = b'#';
        let err = format!("{:#}", parse_records("r", &bytes[..]).unwrap_err());
        assert!(err.starts_with("r line 2"), "{err}");
    }

    #[test]
    fn a_result_file_with_a_hostile_name_is_refused() {
        let text = String::from_utf8(records_bytes()).unwrap().replacen(
            "\"name\":\"quick\"",
            "\"name\":\"../../x\"",
            1,
        );
        let err = format!("{:#}", parse_records("r", text.as_bytes()).unwrap_err());
        assert!(err.contains("r line 1: experiment: name"), "{err}");
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn result_files_never_panic(bytes in mutated(records_bytes())) {
            let _ = parse_records("r", &bytes[..]);
        }
    }
}
