//! The parsers' property tests share this: a fixed seed (a failure reproduces), 10,000 cases,
//! and inputs that are arbitrary bytes or, more often, a valid file with a few bytes changed,
//! removed or inserted, or cut short — the damage real files get.

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngSeed};

pub fn config() -> Config {
    Config {
        cases: 10_000,
        rng_seed: RngSeed::Fixed(0x5eed),
        failure_persistence: None,
        ..Config::default()
    }
}

#[derive(Clone, Debug)]
enum Edit {
    Set(Index, u8),
    Remove(Index),
    Insert(Index, u8),
    Truncate(Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    // Bytes that often matter in headers: zero, all ones, small counts, anything.
    let byte = prop_oneof![Just(0u8), Just(0xff), 1u8..16, any::<u8>()];
    prop_oneof![
        4 => (any::<Index>(), byte.clone()).prop_map(|(i, b)| Edit::Set(i, b)),
        1 => any::<Index>().prop_map(Edit::Remove),
        1 => (any::<Index>(), byte).prop_map(|(i, b)| Edit::Insert(i, b)),
        1 => any::<Index>().prop_map(Edit::Truncate),
    ]
}

fn apply(valid: &[u8], edits: Vec<Edit>) -> Vec<u8> {
    let mut bytes = valid.to_vec();
    for edit in edits {
        if bytes.is_empty() {
            break;
        }
        match edit {
            Edit::Set(i, b) => {
                let i = i.index(bytes.len());
                bytes[i] = b;
            }
            Edit::Remove(i) => {
                bytes.remove(i.index(bytes.len()));
            }
            Edit::Insert(i, b) => bytes.insert(i.index(bytes.len() + 1), b),
            Edit::Truncate(i) => bytes.truncate(i.index(bytes.len())),
        }
    }
    bytes
}

/// Arbitrary bytes (1 in 5) or `valid` with one to five edits.
pub fn mutated(valid: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..512),
        4 => prop::collection::vec(edit(), 1..6).prop_map(move |edits| apply(&valid, edits)),
    ]
}

/// Like `mutated`, for text: the edits may break UTF-8, which the parser must also survive.
pub fn mutated_text(valid: &str) -> impl Strategy<Value = Vec<u8>> {
    mutated(valid.as_bytes().to_vec())
}

/// gzip-compressed `bytes`, as the official files come.
pub fn gz(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}
