//! The arms' colours, one palette for the page's charts and `adaexp plot`'s figures, chosen by
//! an arm's identity (its optimizer and how many arms of that optimizer come before it), not by
//! its position: switching SGDM off must not repaint Adam.

/// Okabe–Ito, as CSS writes it: distinct for colour-blind readers too. Blue, vermillion, bluish
/// green, reddish purple, orange, sky blue, black, yellow.
pub const PALETTE: [&str; 8] = [
    "#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000", "#f0e442",
];

/// The slot an optimizer's first and second arm prefer: SGDM blue, Adam vermillion, Padam
/// green, AdaExp purple; a second AdaExp orange, a second Adam (the matched control) sky blue.
fn preferred(kind: &str, ordinal: usize) -> Option<usize> {
    let (first, second) = match kind {
        "sgdm" => (0, 6),
        "adam" => (1, 5),
        "padam" => (2, 7),
        "adaexp" => (3, 4),
        _ => return None,
    };
    match ordinal {
        0 => Some(first),
        1 => Some(second),
        _ => None,
    }
}

/// Each arm's palette slot, given the arms' optimizer kinds (`OptimizerSpec::kind`) in order: the
/// slot its identity prefers, else the lowest free one, so that up to eight arms never share a
/// colour; past eight they cycle.
pub fn slots<'a>(kinds: impl IntoIterator<Item = &'a str>) -> Vec<usize> {
    let mut taken = [false; PALETTE.len()];
    let mut seen: Vec<&str> = Vec::new();
    let mut slots = Vec::new();
    for (position, kind) in kinds.into_iter().enumerate() {
        let ordinal = seen.iter().filter(|k| **k == kind).count();
        seen.push(kind);
        let slot = preferred(kind, ordinal)
            .filter(|slot| !taken[*slot])
            .or_else(|| taken.iter().position(|t| !t))
            .unwrap_or(position % PALETTE.len());
        taken[slot] = true;
        slots.push(slot);
    }
    slots
}

/// A slot's colour as CSS writes it.
pub fn css(slot: usize) -> &'static str {
    PALETTE[slot % PALETTE.len()]
}

/// A slot's colour as red, green and blue.
pub fn rgb(slot: usize) -> (u8, u8, u8) {
    let hex = &css(slot)[1..];
    let channel = |i: usize| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap_or(0);
    (channel(0), channel(1), channel(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_arm_keeps_its_colour_when_others_are_switched_off() {
        let page = ["sgdm", "adam", "padam", "adaexp", "adaexp", "adam"];
        assert_eq!(slots(page), [0, 1, 2, 3, 4, 5]);
        // SGDM off: Adam, Padam and AdaExp keep theirs.
        assert_eq!(slots(["adam", "padam", "adaexp"]), [1, 2, 3]);
        assert_eq!(slots(["adaexp", "adam", "adam"]), [3, 1, 5]);
    }

    #[test]
    fn up_to_eight_arms_never_share_a_colour() {
        let many = ["adaexp"; 8];
        let got = slots(many);
        assert_eq!(got, [3, 4, 0, 1, 2, 5, 6, 7]);
        let mut mixed = slots([
            "sgdm", "sgdm", "sgdm", "adam", "x", "adam", "adaexp", "padam",
        ]);
        mixed.sort_unstable();
        assert_eq!(mixed, [0, 1, 2, 3, 4, 5, 6, 7]);
        // The ninth cycles.
        assert_eq!(slots(["sgdm"; 9])[8], 0);
    }

    #[test]
    fn slots_cycle_and_read_as_rgb() {
        assert_eq!(css(8), "#0072b2");
        assert_eq!(rgb(0), (0, 114, 178));
        assert_eq!(rgb(1), (213, 94, 0));
        assert_eq!(rgb(7), (240, 228, 66));
    }
}
