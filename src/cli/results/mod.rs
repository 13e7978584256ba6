//! Result files: append-only JSONL records (one file per seed), checkpoints beside them, and
//! finding and reading them back for plots.

mod checkpoint;
mod files;
mod reader;
mod writer;

pub use checkpoint::{load_checkpoint, save_checkpoint};
pub use files::{jsonl_in, result_files};
pub use reader::{read_header, read_records};
pub use writer::{RecordWriter, Synced};

use sha2::{Digest, Sha256};

/// SHA-256 as lower-case hex: how checkpoints pin records and blobs.
fn sha256_hex(bytes: &[u8]) -> String {
    super::data::hex(&Sha256::digest(bytes))
}
