//! Where results live: file names of a seed's results (and a shard's), and the folders of a
//! sweep's shards. `run` writes them, `sweep` plans and reads them.

use crate::cli::data;

/// The longest `seed-S.ARMS` stem written out in full: file systems refuse names over 255
/// bytes, and the stem gets suffixes (`.checkpoint.tmp`).
const MAX_STEM_BYTES: usize = 160;

/// The file name stem of a seed's results: `seed-S`, or `seed-S.ARMS` for a shard. A shard of
/// so many arms that its names would make too long a file name is `seed-S.N-arms-HASH`
/// instead, HASH naming that set of arms (SHA-256 of the names, 12 hex digits).
pub fn file_stem(seed: u64, shard: Option<&[String]>) -> String {
    match shard {
        None => format!("seed-{seed}"),
        Some(arms) => {
            let slugs: Vec<String> = arms.iter().map(|a| slug(a)).collect();
            let full = format!("seed-{seed}.{}", slugs.join("+"));
            if full.len() <= MAX_STEM_BYTES {
                return full;
            }
            use sha2::{Digest, Sha256};
            let mut hash = Sha256::new();
            for arm in arms {
                hash.update(arm.as_bytes());
                hash.update([0]);
            }
            let hex = data::hex(&hash.finalize()[..6]);
            format!("seed-{seed}.{}-arms-{hex}", arms.len())
        }
    }
}

/// An arm name as a file-name part: lower-case letters and digits, runs of others as one '-'.
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let trimmed = out.trim_end_matches('-');
    if trimmed.is_empty() {
        "arm".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// The results folder of a sweep's `index`-th shard, relative to the sweep's folder.
pub fn shard_dir(index: usize, seed: u64, arms: Option<&[String]>) -> String {
    let what = arms.map_or("all".to_owned(), |a| slug(&a[0]));
    format!("shards/{index:02}-seed{seed}-{what}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::experiment;

    #[test]
    fn a_shard_of_many_arms_gets_a_short_file_name_of_its_own() {
        let spec = experiment::load(None, Some("fashion-tuned")).unwrap();
        let names: Vec<String> = spec.arms.iter().map(|a| a.name.clone()).collect();
        assert_eq!(
            file_stem(0, Some(&names[..2])),
            "seed-0.sgdm-lr-1e-2+sgdm-lr-3e-2"
        );
        let all = file_stem(3, Some(&names));
        assert!(
            all.starts_with("seed-3.30-arms-") && all.len() == 27,
            "{all}"
        );
        assert_eq!(file_stem(3, Some(&names)), all);
        let others = file_stem(3, Some(&names[1..]));
        assert!(others.starts_with("seed-3.29-arms-") && others[15..] != all[15..]);
        for n in 0..=names.len() {
            assert!(file_stem(0, Some(&names[..n])).len() <= MAX_STEM_BYTES);
        }
    }

    #[test]
    fn shard_folders_are_numbered_and_named_by_seed_and_first_arm() {
        assert_eq!(shard_dir(3, 1, None), "shards/03-seed1-all");
        let arms = ["Adam, lr linear → 0".to_owned()];
        assert_eq!(
            shard_dir(12, 0, Some(&arms)),
            "shards/12-seed0-adam-lr-linear-0"
        );
        assert_eq!(slug("→"), "arm");
    }
}
