//! What a page run showed, once it ends or pauses: per arm the final and best test accuracy, the
//! final training loss and the differences from Adam and SGDM, and one sentence written from
//! those numbers. Nothing here touches the DOM, so it is tested natively.

use super::ArmKind;
use crate::train::Record;

/// One arm of the run as it ended.
#[derive(Clone, Debug, PartialEq)]
pub struct ArmOutcome {
    pub kind: ArmKind,
    /// The name in the records.
    pub name: String,
    /// The display text with the arm's values ("AdaExp 0.5→0 linear").
    pub label: String,
    /// At the arm's last ended epoch (`None` before one has ended).
    pub final_test_accuracy: Option<f64>,
    pub best_test_accuracy: Option<f64>,
    pub final_train_loss: Option<f64>,
    /// The epoch those are from.
    pub epochs: u64,
    /// Why it stopped early ("diverged at step 12"), if it did.
    pub stopped: Option<String>,
    /// Final test accuracy minus Adam's and minus SGDM's, in percentage points: only between
    /// arms that reached the run's last ended epoch.
    pub vs_adam: Option<f64>,
    pub vs_sgdm: Option<f64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub arms: Vec<ArmOutcome>,
    /// The last epoch any arm ended.
    pub epochs: u64,
    pub sentence: String,
}

/// A difference in points to the tenth shown: the sentence and the table agree on what is 0.
fn to_tenth(difference: f64) -> f64 {
    (difference * 10.0).round() / 10.0
}

/// How `difference` (points) compares with `other`: "1.8 points above Adam", "level with SGDM".
fn compared(difference: f64, other: &str) -> String {
    let rounded = to_tenth(difference);
    if rounded == 0.0 {
        format!("level with {other}")
    } else {
        let side = if rounded > 0.0 { "above" } else { "below" };
        let unit = if rounded.abs() == 1.0 {
            "point"
        } else {
            "points"
        };
        format!("{:.1} {unit} {side} {other}", rounded.abs())
    }
}

/// A signed difference in points for the table: "+1.8", "−0.4", "0.0".
pub fn signed_points(difference: f64) -> String {
    let rounded = to_tenth(difference);
    if rounded > 0.0 {
        format!("+{rounded:.1}")
    } else if rounded < 0.0 {
        format!("−{:.1}", -rounded)
    } else {
        "0.0".into()
    }
}

/// `a`, `a and b`, `a, b and c`.
fn listed(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The run's verdict, or `None` while no epoch has ended. `arms`: the run's arms (kind, record
/// name, label) in the page's order; `planned_epochs`: the run's length; `paused`: it may go on.
pub fn verdict(
    records: &[Record],
    arms: &[(ArmKind, String, String)],
    planned_epochs: u64,
    paused: bool,
) -> Option<Verdict> {
    let mut outcomes: Vec<ArmOutcome> = arms
        .iter()
        .map(|(kind, name, label)| {
            let mut outcome = ArmOutcome {
                kind: *kind,
                name: name.clone(),
                label: label.clone(),
                final_test_accuracy: None,
                best_test_accuracy: None,
                final_train_loss: None,
                epochs: 0,
                stopped: None,
                vs_adam: None,
                vs_sgdm: None,
            };
            for record in records {
                match record {
                    Record::Epoch(e) if e.arm == *name => {
                        outcome.final_test_accuracy = Some(e.test_accuracy);
                        outcome.final_train_loss = Some(e.train_loss);
                        outcome.epochs = e.epoch;
                        outcome.best_test_accuracy = Some(
                            outcome
                                .best_test_accuracy
                                .map_or(e.test_accuracy, |b| b.max(e.test_accuracy)),
                        );
                    }
                    Record::Diverged(d) if d.arm == *name => {
                        outcome.stopped = Some(format!("diverged at step {}", d.step));
                    }
                    Record::Stopped(s) if s.arm == *name => {
                        outcome.stopped = Some(format!("stopped at step {}: {}", s.step, s.reason));
                    }
                    _ => {}
                }
            }
            outcome
        })
        .collect();
    let epochs = outcomes.iter().map(|o| o.epochs).max().filter(|&e| e > 0)?;
    // Arms that reached the last ended epoch, by kind: the ones differences are taken between.
    let at_end = |outcomes: &[ArmOutcome], kind: ArmKind| {
        outcomes
            .iter()
            .find(|o| o.kind == kind && o.epochs == epochs)
            .and_then(|o| o.final_test_accuracy)
    };
    let adam = at_end(&outcomes, ArmKind::Adam);
    let sgdm = at_end(&outcomes, ArmKind::Sgdm);
    for o in &mut outcomes {
        if o.epochs == epochs
            && let Some(acc) = o.final_test_accuracy
        {
            o.vs_adam = adam
                .filter(|_| o.kind != ArmKind::Adam)
                .map(|a| 100.0 * (acc - a));
            o.vs_sgdm = sgdm
                .filter(|_| o.kind != ArmKind::Sgdm)
                .map(|s| 100.0 * (acc - s));
        }
    }
    let sentence = sentence(&outcomes, epochs, planned_epochs, paused);
    Some(Verdict {
        arms: outcomes,
        epochs,
        sentence,
    })
}

fn sentence(outcomes: &[ArmOutcome], epochs: u64, planned: u64, paused: bool) -> String {
    let plural = |n: u64| if n == 1 { "" } else { "s" };
    let when = if paused && epochs < planned {
        format!("after {epochs} of {planned} epochs so far (paused), one seed")
    } else {
        format!("after {epochs} epoch{}, one seed", plural(epochs))
    };
    let reached: Vec<&ArmOutcome> = outcomes
        .iter()
        .filter(|o| o.epochs == epochs && o.final_test_accuracy.is_some())
        .collect();
    let mut clauses = Vec::new();
    for subject in reached
        .iter()
        .filter(|o| matches!(o.kind, ArmKind::AdaExp | ArmKind::AdaExp2))
    {
        let mut against = Vec::new();
        if let Some(d) = subject.vs_adam {
            against.push(compared(d, "Adam"));
        }
        if let Some(d) = subject.vs_sgdm {
            against.push(compared(d, "SGDM"));
        }
        let acc = 100.0 * subject.final_test_accuracy.unwrap_or_default();
        clauses.push(if against.is_empty() {
            format!("{} ended at {acc:.1} % test accuracy", subject.label)
        } else {
            format!(
                "{} ended at {acc:.1} % test accuracy, {}",
                subject.label,
                listed(&against)
            )
        });
    }
    let adaexp = reached.iter().find(|o| o.kind == ArmKind::AdaExp);
    if let (Some(matched), Some(adaexp)) = (
        reached.iter().find(|o| o.kind == ArmKind::AdamMatched),
        adaexp,
    ) {
        let d = 100.0
            * (matched.final_test_accuracy.unwrap_or_default()
                - adaexp.final_test_accuracy.unwrap_or_default());
        clauses.push(format!("{} ended {}", matched.label, compared(d, "AdaExp")));
    }
    let stopped: Vec<String> = outcomes
        .iter()
        .filter_map(|o| Some(format!("{} {}", o.label, o.stopped.as_ref()?)))
        .collect();
    if clauses.is_empty() {
        // No AdaExp arm reached the end: name the best arm instead.
        let best = reached.iter().max_by(|a, b| {
            a.final_test_accuracy
                .partial_cmp(&b.final_test_accuracy)
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        match best {
            Some(best) => clauses.push(format!(
                "{} ended highest, at {:.1} % test accuracy",
                best.label,
                100.0 * best.final_test_accuracy.unwrap_or_default()
            )),
            None => clauses.push("no arm ended an epoch".into()),
        }
    }
    let mut text = format!("{}, {when}.", capitalised(&clauses.join("; ")));
    if !stopped.is_empty() {
        text.push_str(&format!(" {}.", capitalised(&listed(&stopped))));
    }
    text
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::{DivergedRecord, EpochRecord};

    fn epoch(arm: &str, epoch: u64, test_accuracy: f64, train_loss: f64) -> Record {
        Record::Epoch(EpochRecord::example(arm, epoch, test_accuracy, train_loss))
    }

    fn arm(kind: ArmKind, label: &str) -> (ArmKind, String, String) {
        (kind, kind.name().into(), label.into())
    }

    fn default_arms() -> Vec<(ArmKind, String, String)> {
        vec![
            arm(ArmKind::Sgdm, "SGDM"),
            arm(ArmKind::Adam, "Adam"),
            arm(ArmKind::Padam, "Padam p=0.125"),
            arm(ArmKind::AdaExp, "AdaExp 0.5→0 linear"),
        ]
    }

    /// Two epochs: AdaExp ends at 41.8 %, Adam 40.0 %, SGDM 42.2 %, Padam 39.0 % (its best,
    /// 39.5 %, was epoch 1).
    fn two_epochs() -> Vec<Record> {
        vec![
            epoch("SGDM", 1, 0.30, 2.0),
            epoch("Adam", 1, 0.35, 1.9),
            epoch("Padam", 1, 0.395, 1.95),
            epoch("AdaExp", 1, 0.33, 1.8),
            epoch("SGDM", 2, 0.422, 1.5),
            epoch("Adam", 2, 0.40, 1.4),
            epoch("Padam", 2, 0.39, 1.45),
            epoch("AdaExp", 2, 0.418, 1.3),
        ]
    }

    #[test]
    fn nothing_to_say_before_an_epoch_ends() {
        assert_eq!(verdict(&[], &default_arms(), 2, false), None);
    }

    #[test]
    fn the_table_holds_final_best_loss_and_the_differences_in_points() {
        let v = verdict(&two_epochs(), &default_arms(), 2, false).unwrap();
        assert_eq!(v.epochs, 2);
        let padam = &v.arms[2];
        assert_eq!(padam.final_test_accuracy, Some(0.39));
        assert_eq!(padam.best_test_accuracy, Some(0.395));
        assert_eq!(padam.final_train_loss, Some(1.45));
        let ax = &v.arms[3];
        // 41.8 − 40.0 and 41.8 − 42.2, in points.
        assert!((ax.vs_adam.unwrap() - 1.8).abs() < 1e-9);
        assert!((ax.vs_sgdm.unwrap() + 0.4).abs() < 1e-9);
        // No difference of an arm from itself.
        assert_eq!((v.arms[0].vs_sgdm, v.arms[1].vs_adam), (None, None));
        assert!((v.arms[0].vs_adam.unwrap() - 2.2).abs() < 1e-9);
        assert_eq!(signed_points(ax.vs_adam.unwrap()), "+1.8");
        assert_eq!(signed_points(ax.vs_sgdm.unwrap()), "−0.4");
        assert_eq!(signed_points(0.04), "0.0");
        assert_eq!(signed_points(-0.04), "0.0");
    }

    #[test]
    fn the_sentence_is_written_from_the_numbers() {
        let v = verdict(&two_epochs(), &default_arms(), 2, false).unwrap();
        assert_eq!(
            v.sentence,
            "AdaExp 0.5→0 linear ended at 41.8 % test accuracy, 1.8 points above Adam and 0.4 \
             points below SGDM, after 2 epochs, one seed."
        );
        let paused = verdict(&two_epochs()[..4], &default_arms(), 6, true).unwrap();
        assert_eq!(
            paused.sentence,
            "AdaExp 0.5→0 linear ended at 33.0 % test accuracy, 2.0 points below Adam and 3.0 \
             points above SGDM, after 1 of 6 epochs so far (paused), one seed."
        );
    }

    #[test]
    fn the_matched_control_and_a_second_schedule_get_their_clauses() {
        let mut records = two_epochs();
        records.push(epoch("AdaExp #2", 2, 0.40, 1.4));
        records.push(epoch("Adam matched to AdaExp", 2, 0.408, 1.35));
        let mut arms = default_arms();
        arms.push(arm(ArmKind::AdaExp2, "AdaExp #2 0.5→0.25 linear"));
        arms.push(arm(ArmKind::AdamMatched, "Adam at AdaExp's step size"));
        let v = verdict(&records, &arms, 2, false).unwrap();
        assert_eq!(
            v.sentence,
            "AdaExp 0.5→0 linear ended at 41.8 % test accuracy, 1.8 points above Adam and 0.4 \
             points below SGDM; AdaExp #2 0.5→0.25 linear ended at 40.0 % test accuracy, level \
             with Adam and 2.2 points below SGDM; Adam at AdaExp's step size ended 1.0 point \
             below AdaExp, after 2 epochs, one seed."
        );
    }

    #[test]
    fn an_arm_that_diverged_is_said_and_left_out_of_the_differences() {
        let mut records = two_epochs();
        // Adam diverged in epoch 2: its last ended epoch is 1.
        records.retain(|r| !matches!(r, Record::Epoch(e) if e.arm == "Adam" && e.epoch == 2));
        records.push(Record::Diverged(DivergedRecord {
            arm: "Adam".into(),
            epoch: 2,
            step: 6,
            loss: "NaN".into(),
        }));
        let v = verdict(&records, &default_arms(), 2, false).unwrap();
        let adam = &v.arms[1];
        assert_eq!(
            (adam.epochs, adam.stopped.as_deref()),
            (1, Some("diverged at step 6"))
        );
        assert_eq!((adam.vs_sgdm, v.arms[3].vs_adam), (None, None));
        assert_eq!(
            v.sentence,
            "AdaExp 0.5→0 linear ended at 41.8 % test accuracy, 0.4 points below SGDM, after 2 \
             epochs, one seed. Adam diverged at step 6."
        );
    }

    #[test]
    fn without_an_adaexp_arm_the_best_arm_is_named() {
        let records: Vec<Record> = two_epochs()
            .into_iter()
            .filter(|r| !matches!(r, Record::Epoch(e) if e.arm == "AdaExp"))
            .collect();
        let v = verdict(&records, &default_arms()[..3], 2, false).unwrap();
        assert_eq!(
            v.sentence,
            "SGDM ended highest, at 42.2 % test accuracy, after 2 epochs, one seed."
        );
    }
}
