//! Records as files, the same from the native runner and from the page: a result file (JSONL,
//! one record per line after the run header) and the per-epoch table (CSV).

use super::{EpochRecord, Record, RunInfo};

/// One line of a result file, newline included.
pub fn record_line(record: &Record) -> Result<Vec<u8>, serde_json::Error> {
    let mut line = serde_json::to_vec(record)?;
    line.push(b'\n');
    Ok(line)
}

/// A whole result file: the run header, then `records` in order (what `adaexp run` writes and
/// `adaexp plot` reads).
pub fn result_file(info: &RunInfo, records: &[Record]) -> Result<String, serde_json::Error> {
    let mut bytes = record_line(&Record::Run(info.clone()))?;
    for record in records {
        bytes.extend(record_line(record)?);
    }
    Ok(String::from_utf8(bytes).expect("serde_json writes UTF-8"))
}

/// The epoch records as CSV, one row per arm and epoch, a header row naming the fields.
pub fn epochs_csv(records: &[Record]) -> Result<String, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let mut any = false;
    for record in records {
        if let Record::Epoch(epoch) = record {
            writer.serialize(epoch)?;
            any = true;
        }
    }
    if !any {
        // The header alone: an empty table still says what it would hold.
        writer.write_record(EPOCH_COLUMNS)?;
    }
    let bytes = writer.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8(bytes).expect("CSV of UTF-8 fields"))
}

/// `EpochRecord`'s fields, in order: the CSV header.
const EPOCH_COLUMNS: [&str; 9] = [
    "arm",
    "epoch",
    "step",
    "train_loss",
    "train_accuracy",
    "test_loss",
    "test_accuracy",
    "wall_seconds",
    "images_per_second",
];

/// Reads back what `epochs_csv` wrote (for tests and tools).
pub fn read_epochs_csv(text: &str) -> Result<Vec<EpochRecord>, csv::Error> {
    csv::Reader::from_reader(text.as_bytes())
        .deserialize()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::{StepRecord, epochs};

    fn epoch(arm: &str, epoch: u64, accuracy: f64) -> Record {
        Record::Epoch(EpochRecord {
            arm: arm.into(),
            epoch,
            step: 4 * epoch,
            train_loss: 1.0 / 3.0,
            train_accuracy: 0.25,
            test_loss: 2.5,
            test_accuracy: accuracy,
            val_loss: None,
            val_accuracy: None,
            wall_seconds: 1.5,
            images_per_second: 320.0,
        })
    }

    #[test]
    fn the_epoch_table_has_a_row_per_epoch_record_and_quotes_names() {
        let records = vec![
            epoch("SGDM", 1, 0.5),
            Record::Step(StepRecord {
                arm: "SGDM".into(),
                step: 5,
                epoch: 2,
                loss: 1.0,
                p: None,
                lr: 0.1,
                update_rms: None,
            }),
            epoch("Adam \"p = 0.5\", fixed", 1, 0.625),
        ];
        let text = epochs_csv(&records).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some(EPOCH_COLUMNS.join(",").as_str()));
        // A name with a quote and a comma is one quoted field.
        assert_eq!(
            lines.nth(1),
            Some("\"Adam \"\"p = 0.5\"\", fixed\",1,4,0.3333333333333333,0.25,2.5,0.625,1.5,320.0")
        );
        let back = read_epochs_csv(&text).unwrap();
        let expected: Vec<EpochRecord> = epochs(&records).cloned().collect();
        assert_eq!(back, expected);
        assert_eq!(
            epochs_csv(&[]).unwrap(),
            format!("{}\n", EPOCH_COLUMNS.join(","))
        );
    }
}
