//! Tuned comparisons: each family's learning rate chosen on the validation split (the rate
//! with the best mean final validation accuracy over seeds), then that rate's *test* accuracy
//! reported, paired against a reference family's selected arm. The test split never takes part
//! in the choice.

use serde::{Deserialize, Serialize};

use super::summary::{
    ArmSummary, PairedDifference, Spread, Summary, interval_points, percent, points,
};

/// One arm of a family's grid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GridPoint {
    pub arm: String,
    /// Its base learning rate (`None` for a matched arm, which takes its target's step size).
    pub lr: Option<f64>,
    /// The arm whose update size a matched arm takes.
    pub target: Option<String>,
    pub final_val_accuracy: Option<Spread>,
    pub final_test_accuracy: Option<Spread>,
    /// Seeds where it diverged or stopped: an arm that failed on any seed is not selected.
    pub failed_seeds: Vec<u64>,
}

/// How a family's arm was chosen.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// The best mean final validation accuracy among the arms that never failed.
    BestValidation,
    /// A matched control: the member matched to the selected arm of this family.
    FollowsTarget(String),
}

/// Where the selected rate sits in its grid, when that is an edge (the optimum may lie
/// outside the grid).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Edge {
    /// A grid of one rate: nothing was tuned.
    Untuned,
    Smallest,
    Largest,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FamilySelection {
    pub family: String,
    /// In the experiment's order (a grid's order).
    pub points: Vec<GridPoint>,
    pub rule: Rule,
    /// The chosen arm; `None` when no member qualifies (all failed, or a control with no
    /// member at its target's selected rate).
    pub selected: Option<String>,
    pub edge: Option<Edge>,
}

/// A selected arm against the reference family's selected arm, with the Holm-adjusted p-value
/// over all the comparisons made against that reference.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SelectedComparison {
    pub family: String,
    pub difference: PairedDifference,
    pub holm_p: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    pub families: Vec<FamilySelection>,
}

impl Selection {
    /// Selects every family's arm, or `None` when the runs have no validation records.
    pub fn of(summary: &Summary) -> Option<Selection> {
        if summary.arms.iter().all(|a| a.final_val_accuracy.is_none()) {
            return None;
        }
        let spec = &summary.experiment;
        let mut families: Vec<(String, Vec<GridPoint>)> = Vec::new();
        for arm in &summary.arms {
            let Some(arm_spec) = spec.arms.iter().find(|a| a.name == arm.name) else {
                continue;
            };
            let point = GridPoint {
                arm: arm.name.clone(),
                lr: arm_spec.lr.schedule().map(|s| s.base),
                target: arm_spec.lr.target().map(str::to_owned),
                final_val_accuracy: arm.final_val_accuracy.clone(),
                final_test_accuracy: arm.final_test_accuracy.clone(),
                failed_seeds: failed_seeds(arm),
            };
            match families.iter_mut().find(|(f, _)| f == arm_spec.family()) {
                Some((_, points)) => points.push(point),
                None => families.push((arm_spec.family().to_owned(), vec![point])),
            }
        }
        let family_of = |arm: &str| {
            spec.arms
                .iter()
                .find(|a| a.name == arm)
                .map(|a| a.family().to_owned())
        };
        // Scheduled families first: the controls follow their targets' choices.
        let mut selected: Vec<FamilySelection> = families
            .iter()
            .map(|(family, points)| {
                let rule = match points.iter().find_map(|p| p.target.as_deref()) {
                    Some(target) => Rule::FollowsTarget(family_of(target).unwrap_or_default()),
                    None => Rule::BestValidation,
                };
                let (selected, edge) = match rule {
                    Rule::BestValidation => best_by_validation(points),
                    Rule::FollowsTarget(_) => (None, None),
                };
                FamilySelection {
                    family: family.clone(),
                    points: points.clone(),
                    rule,
                    selected,
                    edge,
                }
            })
            .collect();
        let chosen: Vec<(String, Option<String>)> = selected
            .iter()
            .map(|f| (f.family.clone(), f.selected.clone()))
            .collect();
        for family in &mut selected {
            if let Rule::FollowsTarget(target_family) = &family.rule {
                let target_arm = chosen
                    .iter()
                    .find(|(f, _)| f == target_family)
                    .and_then(|(_, arm)| arm.clone());
                family.selected = family
                    .points
                    .iter()
                    .find(|p| {
                        p.failed_seeds.is_empty() && target_arm.is_some() && p.target == target_arm
                    })
                    .map(|p| p.arm.clone());
            }
        }
        Some(Selection { families: selected })
    }

    /// The selected arm of `family`.
    pub fn selected(&self, family: &str) -> Option<&str> {
        self.families
            .iter()
            .find(|f| f.family == family)?
            .selected
            .as_deref()
    }

    /// Every other family's selected arm against `reference`'s (a family's name): paired
    /// differences of final test accuracy, with Holm-adjusted p-values over these comparisons.
    pub fn compare(
        &self,
        summary: &Summary,
        reference: &str,
    ) -> Result<Vec<SelectedComparison>, String> {
        let names = || {
            self.families
                .iter()
                .map(|f| format!("'{}'", f.family))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let family = self
            .families
            .iter()
            .find(|f| f.family == reference)
            .ok_or_else(|| {
                format!(
                    "no family named '{reference}'; the families are {}",
                    names()
                )
            })?;
        let base = family
            .selected
            .as_deref()
            .ok_or_else(|| format!("'{reference}' has no selected arm to compare against"))?;
        let differences = summary.paired_differences(base)?;
        let mut comparisons: Vec<SelectedComparison> = self
            .families
            .iter()
            .filter(|f| f.family != reference)
            .filter_map(|f| {
                let arm = f.selected.as_deref()?;
                let difference = differences.iter().find(|d| d.arm == arm)?.clone();
                Some(SelectedComparison {
                    family: f.family.clone(),
                    difference,
                    holm_p: None,
                })
            })
            .collect();
        let p_values: Vec<Option<f64>> = comparisons.iter().map(|c| c.difference.p_value).collect();
        for (comparison, holm) in comparisons.iter_mut().zip(holm_adjust(&p_values)) {
            comparison.holm_p = holm;
        }
        Ok(comparisons)
    }

    /// The grid (validation and test accuracy per family and rate, the selected arm marked),
    /// the families whose choice sits at a grid's edge, and the selected arms against
    /// `reference`'s, as Markdown.
    pub fn markdown(&self, summary: &Summary, reference: &str) -> Result<String, String> {
        let pct = percent;
        let mut out = String::from(
            "\n## Learning rates, chosen on the validation split\n\n\
             Each family's rate is the one with the best mean final validation accuracy over \
             seeds (an arm that diverged on any seed is not chosen); a matched control takes the \
             member matched to its target's chosen arm. The test split takes no part in the \
             choice.\n\n\
             | family | arm | lr | final val acc % | final test acc % | |\n|---|---|---|---|---|---|\n",
        );
        for family in &self.families {
            for point in &family.points {
                let lr = match (point.lr, &point.target) {
                    (Some(lr), _) => format!("{lr:e}"),
                    (None, Some(target)) => format!("as {target}"),
                    (None, None) => "—".into(),
                };
                let mut mark = String::new();
                if family.selected.as_deref() == Some(point.arm.as_str()) {
                    mark += "**selected**";
                }
                if !point.failed_seeds.is_empty() {
                    mark += &format!(" failed on seeds {:?}", point.failed_seeds);
                }
                out += &format!(
                    "| {} | {} | {lr} | {} | {} | {} |\n",
                    family.family,
                    point.arm,
                    pct(&point.final_val_accuracy),
                    pct(&point.final_test_accuracy),
                    mark.trim()
                );
            }
        }
        let edges: Vec<String> = self
            .families
            .iter()
            .filter_map(|f| {
                let edge = match f.edge? {
                    Edge::Untuned => "one rate only: not tuned",
                    Edge::Smallest => "its smallest rate",
                    Edge::Largest => "its largest rate",
                };
                Some(format!("{} ({edge})", f.family))
            })
            .collect();
        if !edges.is_empty() {
            out += &format!(
                "\n**Widen the grid:** the chosen rate sits at the edge of the grid for {}; the \
                 best rate may lie outside it.\n",
                edges.join(", ")
            );
        }
        let unselected: Vec<&str> = self
            .families
            .iter()
            .filter(|f| f.selected.is_none())
            .map(|f| f.family.as_str())
            .collect();
        if !unselected.is_empty() {
            out += &format!(
                "\nNo arm could be chosen for {} (every member failed, or no member trained at \
                 its target's chosen rate).\n",
                unselected.join(", ")
            );
        }
        let comparisons = self.compare(summary, reference)?;
        let p = |v: Option<f64>| v.map_or("—".to_owned(), |p| format!("{p:.3}"));
        let reading = match comparisons.len() {
            0 => String::new(),
            1 => "The interval is a 95 % paired-t interval.".to_owned(),
            n => format!(
                "Each interval is a 95 % paired-t interval on its own (unadjusted); with {n} \
                 comparisons against one reference, read them with the Holm-adjusted p-values, \
                 which hold the chance of any false difference at 5 %."
            ),
        };
        out += &format!(
            "\n## At the chosen rates: final test accuracy against {reference}\n\n{reading}\n\n\
             | family | chosen arm | final test acc % | − {reference} (pp) | 95 % CI (unadjusted) | p | Holm p | seeds |\n|---|---|---|---|---|---|---|---|\n"
        );
        let test_of = |arm: &str| {
            summary
                .arms
                .iter()
                .find(|a| a.name == arm)
                .and_then(|a: &ArmSummary| a.final_test_accuracy.clone())
        };
        if let Some(base) = self.selected(reference) {
            out += &format!(
                "| {reference} | {base} | {} | reference | | | | |\n",
                pct(&test_of(base))
            );
        }
        for c in &comparisons {
            let d = &c.difference;
            out += &format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
                c.family,
                d.arm,
                pct(&test_of(&d.arm)),
                points(d.mean),
                interval_points(d.ci95),
                p(d.p_value),
                p(c.holm_p),
                d.seeds.len()
            );
        }
        Ok(out)
    }
}

fn failed_seeds(arm: &ArmSummary) -> Vec<u64> {
    let mut seeds: Vec<u64> = arm
        .diverged_seeds
        .iter()
        .chain(&arm.stopped_seeds)
        .copied()
        .collect();
    seeds.sort_unstable();
    seeds.dedup();
    seeds
}

/// The arm with the best mean final validation accuracy among those that never failed (the
/// first of equals), and whether its rate sits at an edge of the family's grid.
fn best_by_validation(points: &[GridPoint]) -> (Option<String>, Option<Edge>) {
    let best = points
        .iter()
        .filter(|p| p.failed_seeds.is_empty())
        .filter_map(|p| Some((p, p.final_val_accuracy.as_ref()?.mean)))
        .fold(None::<(&GridPoint, f64)>, |best, (p, v)| match best {
            Some((_, b)) if b >= v => best,
            _ => Some((p, v)),
        });
    let Some((best, _)) = best else {
        return (None, None);
    };
    let rates: Vec<f64> = points.iter().filter_map(|p| p.lr).collect();
    let edge = match best.lr {
        _ if rates.len() < 2 => Some(Edge::Untuned),
        Some(lr) if rates.iter().all(|&r| lr <= r) => Some(Edge::Smallest),
        Some(lr) if rates.iter().all(|&r| lr >= r) => Some(Edge::Largest),
        _ => None,
    };
    (Some(best.arm.clone()), edge)
}

/// Holm's step-down adjustment of p-values (`None`s are left out of the count and stay
/// `None`): the k-th smallest of m is multiplied by m − k + 1, then made non-decreasing and
/// capped at 1.
pub fn holm_adjust(p_values: &[Option<f64>]) -> Vec<Option<f64>> {
    let mut order: Vec<(usize, f64)> = p_values
        .iter()
        .enumerate()
        .filter_map(|(i, p)| Some((i, (*p)?)))
        .collect();
    order.sort_by(|a, b| a.1.total_cmp(&b.1));
    let m = order.len();
    let mut adjusted = vec![None; p_values.len()];
    let mut running = 0.0f64;
    for (k, (i, p)) in order.into_iter().enumerate() {
        running = running.max(((m - k) as f64 * p).min(1.0));
        adjusted[i] = Some(running);
    }
    adjusted
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::summary::{Run, summarize};
    use crate::train::{EpochRecord, ExperimentSpec, Record, RunInfo};

    #[test]
    fn holm_multiplies_by_the_remaining_count_and_keeps_the_order() {
        // By hand: sorted 0.01, 0.02, 0.04 → ×3, ×2, ×1 = 0.03, 0.04, 0.04.
        let adjusted = holm_adjust(&[Some(0.04), Some(0.01), None, Some(0.02)]);
        let expect = [Some(0.04), Some(0.03), None, Some(0.04)];
        for (a, e) in adjusted.iter().zip(expect) {
            match (a, e) {
                (Some(a), Some(e)) => assert!((a - e).abs() < 1e-12, "{adjusted:?}"),
                (None, None) => {}
                _ => panic!("{adjusted:?}"),
            }
        }
        // Step-down: a later p never falls below an earlier adjusted one; capped at 1.
        assert_eq!(
            holm_adjust(&[Some(0.3), Some(0.31)]),
            vec![Some(0.6), Some(0.6)]
        );
        assert_eq!(
            holm_adjust(&[Some(0.6), Some(0.9)]),
            vec![Some(1.0), Some(1.0)]
        );
    }

    /// An experiment with grids: SGDM at 3 rates, Adam at 2, a control matched to Adam's.
    fn experiment() -> ExperimentSpec {
        toml::from_str(
            r#"
            name = "tuned"
            dataset = "fashion-mnist"
            model = "small-cnn"
            epochs = 2
            batch_size = 8
            seeds = [0, 1, 2]
            val_size = 20
            [[arms]]
            name = "SGDM"
            optimizer = { kind = "sgdm" }
            lr = { base = [0.01, 0.03, 0.1] }
            [[arms]]
            name = "Adam"
            optimizer = { kind = "adam" }
            lr = { base = [1e-3, 3e-3] }
            [[arms]]
            name = "SGDM matched"
            optimizer = { kind = "sgdm" }
            lr = { match_update_of = "Adam" }
            "#,
        )
        .unwrap()
    }

    /// Seed `seed`'s runs with (arm, final val accuracy, final test accuracy) per arm: the
    /// last epoch carries the numbers, the first one something else.
    fn run(spec: &ExperimentSpec, seed: u64, finals: &[(&str, f64, f64)]) -> Run {
        let epoch = |arm: &str, epoch: u64, val: f64, test: f64| {
            Record::Epoch(EpochRecord {
                arm: arm.into(),
                epoch,
                step: 2 * epoch,
                train_loss: 1.0,
                train_accuracy: 0.5,
                test_loss: 1.0,
                test_accuracy: test,
                val_loss: Some(1.0),
                val_accuracy: Some(val),
                wall_seconds: 1.0,
                images_per_second: 1.0,
            })
        };
        Run {
            info: RunInfo {
                experiment: spec.clone(),
                seed,
                backend: "cpu".into(),
                steps_per_epoch: 2,
                train_images: 16,
                test_images: 8,
                val_images: 20,
                processor: None,
                arms: None,
            },
            records: finals
                .iter()
                .flat_map(|&(arm, val, test)| [epoch(arm, 1, 0.99, 0.99), epoch(arm, 2, val, test)])
                .collect(),
        }
    }

    #[test]
    fn the_best_validation_rate_is_chosen_and_its_test_accuracy_reported() {
        let spec = experiment();
        // SGDM's best validation rate is 0.03; its best *test* accuracy is at 0.1, which must
        // not be what is reported. Adam's best is at its largest rate (an edge).
        let finals = |shift: f64| {
            vec![
                ("SGDM @ lr 1e-2", 0.60 + shift, 0.61),
                ("SGDM @ lr 3e-2", 0.70 + shift, 0.65 + shift),
                ("SGDM @ lr 1e-1", 0.65 + shift, 0.90),
                ("Adam @ lr 1e-3", 0.50, 0.55),
                ("Adam @ lr 3e-3", 0.68, 0.60 + 2.0 * shift),
                ("SGDM matched @ lr 1e-3", 0.40, 0.45),
                ("SGDM matched @ lr 3e-3", 0.42, 0.50 + shift),
            ]
        };
        let runs: Vec<Run> = [0.0, 0.01, 0.03]
            .iter()
            .enumerate()
            .map(|(seed, &shift)| run(&spec, seed as u64, &finals(shift)))
            .collect();
        let summary = summarize(&runs).unwrap();
        let selection = Selection::of(&summary).unwrap();
        assert_eq!(selection.selected("SGDM"), Some("SGDM @ lr 3e-2"));
        assert_eq!(selection.selected("Adam"), Some("Adam @ lr 3e-3"));
        // The control follows Adam's choice, though its own validation accuracy is no guide.
        assert_eq!(
            selection.selected("SGDM matched"),
            Some("SGDM matched @ lr 3e-3")
        );
        let edge = |family: &str| {
            selection
                .families
                .iter()
                .find(|f| f.family == family)
                .unwrap()
                .edge
        };
        assert_eq!(edge("SGDM"), None);
        assert_eq!(edge("Adam"), Some(Edge::Largest));

        let comparisons = selection.compare(&summary, "SGDM").unwrap();
        let adam = &comparisons[0];
        assert_eq!(
            (adam.family.as_str(), adam.difference.arm.as_str()),
            ("Adam", "Adam @ lr 3e-3")
        );
        // Adam 3e-3 minus SGDM 3e-2, per seed: 0.60 − 0.65, 0.62 − 0.66, 0.66 − 0.68.
        let by_hand = (-0.05 - 0.04 - 0.02) / 3.0;
        assert!(
            (adam.difference.mean - by_hand).abs() < 1e-12,
            "{}",
            adam.difference.mean
        );
        assert_eq!(comparisons.len(), 2);
        // Holm over the two comparisons: the smaller p doubled.
        let ps: Vec<f64> = comparisons
            .iter()
            .map(|c| c.difference.p_value.unwrap())
            .collect();
        let smaller = ps.iter().copied().fold(f64::INFINITY, f64::min);
        let holm: Vec<f64> = comparisons.iter().map(|c| c.holm_p.unwrap()).collect();
        assert!(
            holm.iter()
                .any(|h| (h - (2.0 * smaller).min(1.0)).abs() < 1e-12),
            "{holm:?}"
        );

        let table = selection.markdown(&summary, "SGDM").unwrap();
        assert!(
            table.contains("| SGDM | SGDM @ lr 3e-2 | 3e-2 | 71.33 ± "),
            "{table}"
        );
        assert!(
            table.contains("**Widen the grid:**") && table.contains("Adam (its largest rate)"),
            "{table}"
        );
        assert!(
            table.contains("| SGDM | SGDM @ lr 3e-2 | 66.33 ± "),
            "{table}"
        );
        assert!(!table.contains("| SGDM | SGDM @ lr 1e-1 | 90"), "{table}");
        assert!(
            selection
                .compare(&summary, "Nope")
                .unwrap_err()
                .contains("'Adam'")
        );
    }

    #[test]
    fn an_arm_that_failed_on_a_seed_is_not_chosen_and_runs_without_validation_select_nothing() {
        let spec = experiment();
        let mut runs: Vec<Run> = (0..2)
            .map(|seed| {
                run(
                    &spec,
                    seed,
                    &[
                        ("SGDM @ lr 1e-2", 0.60, 0.6),
                        ("SGDM @ lr 3e-2", 0.70, 0.6),
                        ("SGDM @ lr 1e-1", 0.80, 0.6),
                        ("Adam @ lr 1e-3", 0.50, 0.5),
                        ("Adam @ lr 3e-3", 0.40, 0.5),
                        ("SGDM matched @ lr 1e-3", 0.40, 0.4),
                        ("SGDM matched @ lr 3e-3", 0.40, 0.4),
                    ],
                )
            })
            .collect();
        runs[1]
            .records
            .push(Record::Diverged(crate::train::DivergedRecord {
                arm: "SGDM @ lr 1e-1".into(),
                epoch: 2,
                step: 4,
                loss: "NaN".into(),
            }));
        let summary = summarize(&runs).unwrap();
        let selection = Selection::of(&summary).unwrap();
        assert_eq!(selection.selected("SGDM"), Some("SGDM @ lr 3e-2"));
        assert_eq!(selection.selected("Adam"), Some("Adam @ lr 1e-3"));
        assert_eq!(
            selection.selected("SGDM matched"),
            Some("SGDM matched @ lr 1e-3")
        );

        for run in &mut runs {
            for record in &mut run.records {
                if let Record::Epoch(e) = record {
                    (e.val_loss, e.val_accuracy) = (None, None);
                }
            }
        }
        assert_eq!(Selection::of(&summarize(&runs).unwrap()), None);
    }
}
