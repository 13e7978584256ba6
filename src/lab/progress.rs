//! How far a page run has got and how long it has left, from its records and the times at which
//! they arrived. Nothing here touches the DOM, so it is tested natively.

use crate::train::{self, Record};

/// The run's training clock (pauses left out) when records up to `step` had arrived.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mark {
    pub seconds: f64,
    pub step: u64,
}

/// What the progress bar shows.
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    /// The epoch of the last step done (from 1), of `epochs`.
    pub epoch: u64,
    pub epochs: u64,
    /// Steps done in that epoch, of `steps_per_epoch`.
    pub step_in_epoch: u64,
    pub steps_per_epoch: u64,
    /// Steps done over all steps of the run, in [0, 1].
    pub fraction: f64,
    /// Training images per second over all `arms` (they take turns on one device), measured
    /// since the first records: the warm-up (model building, kernel compilation) is left out.
    pub images_per_second: Option<f64>,
    pub arms: usize,
    /// At the measured rate, counting down between records.
    pub seconds_left: Option<f64>,
    /// Each arm's test accuracy at the end of `accuracy_epoch`, the last epoch ended.
    pub accuracy_epoch: Option<u64>,
    pub accuracies: Vec<(String, f64)>,
}

/// The last step any arm has recorded (all arms step together; a stopped arm stops recording).
pub fn last_step(records: &[Record]) -> u64 {
    train::steps(records).next_back().map_or(0, |s| s.step)
}

impl Progress {
    /// `first`: when the first records arrived (the end of the warm-up); `last`: when the latest
    /// did; `now`: the clock now. `train_images` per epoch of `steps_per_epoch` steps, for each
    /// of `arms`.
    pub fn of(
        records: &[Record],
        (arms, epochs): (usize, u64),
        steps_per_epoch: u64,
        train_images: usize,
        (first, last): (Option<Mark>, Option<Mark>),
        now: f64,
    ) -> Progress {
        let spe = steps_per_epoch.max(1);
        let total = (epochs * spe).max(1);
        let done = last_step(records).min(total);
        let (epoch, step_in_epoch) = if done == 0 {
            (1, 0)
        } else {
            ((done - 1) / spe + 1, (done - 1) % spe + 1)
        };
        // Steps per second between the first records and the latest: only steps run after the
        // warm-up count, and evaluations once an epoch has ended inside that stretch.
        let rate = match (first, last) {
            (Some(first), Some(last)) if last.step > first.step && last.seconds > first.seconds => {
                Some((last.step - first.step) as f64 / (last.seconds - first.seconds))
            }
            _ => None,
        };
        let images_per_second = rate.map(|r| r * train_images as f64 / spe as f64 * arms as f64);
        let seconds_left = rate.zip(last).map(|(rate, last)| {
            let since = (now - last.seconds).max(0.0);
            ((total - done) as f64 / rate - since).max(0.0)
        });
        let accuracy_epoch = train::epochs(records).map(|e| e.epoch).max();
        let accuracies = train::epochs(records)
            .filter(|e| Some(e.epoch) == accuracy_epoch)
            .map(|e| (e.arm.clone(), e.test_accuracy))
            .collect();
        Progress {
            epoch,
            epochs,
            step_in_epoch,
            steps_per_epoch: spe,
            fraction: done as f64 / total as f64,
            images_per_second,
            arms,
            seconds_left,
            accuracy_epoch,
            accuracies,
        }
    }

    /// Whole percent done, rounded down (100 % only when every step is done).
    pub fn percent(&self) -> u32 {
        (self.fraction * 100.0).floor() as u32
    }

    /// One line: "epoch 2 of 6 · step 13 of 40 · 118 images/s over 4 arms · about 1 min 20 s left".
    pub fn describe(&self) -> String {
        let mut parts = vec![
            format!("epoch {} of {}", self.epoch, self.epochs),
            format!("step {} of {}", self.step_in_epoch, self.steps_per_epoch),
        ];
        match self.images_per_second {
            Some(rate) => {
                let arms = if self.arms == 1 { "arm" } else { "arms" };
                parts.push(format!("{rate:.0} images/s over {} {arms}", self.arms));
            }
            None => parts.push("measuring the speed…".into()),
        }
        if let Some(left) = self.seconds_left.filter(|_| self.fraction < 1.0) {
            parts.push(format!("about {} left", duration(left)));
        }
        parts.join(" · ")
    }

    /// The last ended epoch's test accuracies: "after epoch 1: SGDM 31.0 %, Adam 28.5 %".
    pub fn describe_accuracies(&self) -> Option<String> {
        let epoch = self.accuracy_epoch?;
        let each: Vec<String> = self
            .accuracies
            .iter()
            .map(|(arm, acc)| format!("{arm} {:.1} %", 100.0 * acc))
            .collect();
        Some(format!(
            "test accuracy after epoch {epoch}: {}",
            each.join(", ")
        ))
    }
}

/// A time left in words: seconds under a minute, else minutes and seconds, else hours and
/// minutes (an estimate needs no more).
pub fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// The document title during and after a run, so that a background tab shows it.
pub fn title(percent: Option<u32>, state: &str) -> String {
    match percent {
        Some(p) => format!("{state}{p} % · adaexp lab"),
        None => format!("{state}adaexp lab"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::{EpochRecord, StepRecord};

    fn step(arm: &str, step: u64) -> Record {
        Record::Step(StepRecord {
            arm: arm.into(),
            step,
            epoch: 1,
            loss: 1.0,
            p: None,
            lr: 0.1,
            update_rms: None,
        })
    }

    fn epoch(arm: &str, epoch: u64, test_accuracy: f64) -> Record {
        Record::Epoch(EpochRecord::example(arm, epoch, test_accuracy, 1.0))
    }

    fn mark(seconds: f64, step: u64) -> Option<Mark> {
        Some(Mark { seconds, step })
    }

    #[test]
    fn before_any_record_it_is_at_step_0_of_epoch_1_with_no_rate() {
        let p = Progress::of(&[], (2, 3), 10, 500, (None, None), 12.0);
        assert_eq!((p.epoch, p.step_in_epoch, p.fraction), (1, 0, 0.0));
        assert_eq!((p.images_per_second, p.seconds_left), (None, None));
        assert_eq!(
            p.describe(),
            "epoch 1 of 3 · step 0 of 10 · measuring the speed…"
        );
        assert_eq!(p.describe_accuracies(), None);
    }

    #[test]
    fn the_rate_leaves_the_warm_up_out_and_the_estimate_counts_down() {
        // 3 epochs of 10 steps, 500 images an epoch (50 per step). The first records (step 2)
        // came at 20 s, after a 20 s warm-up; step 12 at 25 s: 10 steps in 5 s, 2 steps/s.
        let records: Vec<Record> = (1..=12)
            .flat_map(|s| [step("A", s), step("B", s)])
            .chain([epoch("A", 1, 0.3), epoch("B", 1, 0.25)])
            .collect();
        let p = Progress::of(
            &records,
            (2, 3),
            10,
            500,
            (mark(20.0, 2), mark(25.0, 12)),
            26.0,
        );
        assert_eq!((p.epoch, p.step_in_epoch), (2, 2));
        assert_eq!(p.fraction, 12.0 / 30.0);
        assert_eq!(p.percent(), 40);
        // 2 steps/s × 50 images per step, for each of the 2 arms.
        assert_eq!(p.images_per_second, Some(200.0));
        // 18 steps left at 2/s is 9 s from the last mark, 1 s of which has passed.
        assert_eq!(p.seconds_left, Some(8.0));
        assert_eq!(
            p.describe(),
            "epoch 2 of 3 · step 2 of 10 · 200 images/s over 2 arms · about 8 s left"
        );
        assert_eq!(
            p.describe_accuracies().as_deref(),
            Some("test accuracy after epoch 1: A 30.0 %, B 25.0 %")
        );
        // Long after the last records, the estimate stops at 0 rather than going negative.
        let late = Progress::of(
            &records,
            (2, 3),
            10,
            500,
            (mark(20.0, 2), mark(25.0, 12)),
            99.0,
        );
        assert_eq!(late.seconds_left, Some(0.0));
    }

    #[test]
    fn the_last_step_of_an_epoch_is_step_s_of_s_and_the_end_is_100_percent() {
        let records: Vec<Record> = (1..=20).map(|s| step("A", s)).collect();
        let p = Progress::of(&records, (1, 2), 10, 95, (mark(1.0, 1), mark(3.0, 20)), 3.0);
        assert_eq!((p.epoch, p.step_in_epoch, p.percent()), (2, 10, 100));
        assert_eq!(p.seconds_left, Some(0.0));
        assert_eq!(
            p.describe(),
            "epoch 2 of 2 · step 10 of 10 · 90 images/s over 1 arm"
        );
        // 19 steps in 2 s, 9.5 images per step on average (95 images in 10 steps).
        assert_eq!(p.images_per_second, Some(9.5 * 9.5));
        let one_short = Progress::of(&records[..19], (1, 2), 10, 95, (None, None), 0.0);
        assert_eq!(one_short.percent(), 95);
    }

    #[test]
    fn one_mark_gives_no_rate() {
        let records = vec![step("A", 1)];
        let p = Progress::of(&records, (1, 1), 4, 200, (mark(9.0, 1), mark(9.0, 1)), 10.0);
        assert_eq!((p.images_per_second, p.seconds_left), (None, None));
    }

    #[test]
    fn durations_read_as_a_person_would_say_them() {
        assert_eq!(duration(0.4), "0 s");
        assert_eq!(duration(59.4), "59 s");
        assert_eq!(duration(80.0), "1 min 20 s");
        assert_eq!(duration(3600.0 + 125.0), "1 h 2 min");
        assert_eq!(duration(-5.0), "0 s");
    }

    #[test]
    fn the_title_carries_the_percentage() {
        assert_eq!(title(Some(42), ""), "42 % · adaexp lab");
        assert_eq!(title(Some(42), "Paused · "), "Paused · 42 % · adaexp lab");
        assert_eq!(title(None, "Finished · "), "Finished · adaexp lab");
    }
}
