//! The figures of `adaexp plot`, like the post's: training loss and test accuracy per epoch, one
//! colour per arm (`crate::palette`, the page's), mean over seeds with a min–max band; the
//! schedules p(t) and η(t); update sizes; and a tuned study's lr sensitivity.

use std::path::Path;
use std::sync::Once;

use anyhow::Context;
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::palette;
use crate::train::ExperimentSpec;
use crate::train::selection::{GridPoint, Selection};
use crate::train::summary::{EpochSpread, Run, Spread, Summary, summarize};

static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The embedded font is known to parse; text is also written as SVG text regardless.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// A palette slot's colour (`crate::palette`: the page's too).
fn colour(slot: usize) -> RGBColor {
    let (r, g, b) = palette::rgb(slot);
    RGBColor(r, g, b)
}

type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A chart against epochs in the figures' layout, its mesh drawn; with `log_y` the y values are
/// log10 and labelled as powers of ten.
fn epoch_chart<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    (caption, caption_size): (String, u32),
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
    y_label: &str,
    log_y: bool,
) -> Result<Chart<'a, DB>, String> {
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", caption_size))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(x, y)
        .map_err(|e| e.to_string())?;
    let log_label = |v: &f64| format!("{:.0e}", 10f64.powf(*v));
    let plain_label = |v: &f64| format!("{v:.2}");
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(y_label)
        .y_label_formatter(if log_y { &log_label } else { &plain_label })
        .draw()
        .map_err(|e| e.to_string())?;
    Ok(chart)
}

/// A line in the colour of palette slot `slot`, with its legend entry.
fn arm_line<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    slot: usize,
    name: &str,
    points: impl IntoIterator<Item = (f64, f64)>,
) -> Result<(), String> {
    let colour = colour(slot);
    chart
        .draw_series(LineSeries::new(points, colour.stroke_width(2)))
        .map_err(|e| e.to_string())?
        .label(name)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
    Ok(())
}

/// A mean line in the colour of palette slot `slot`, over a min–max band when `band`; `y` maps
/// a value to the chart's axis.
fn banded_line<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    slot: usize,
    name: &str,
    points: &[(f64, &Spread)],
    band: bool,
    y: impl Fn(f64) -> f64,
) -> Result<(), String> {
    if band {
        let upper = points.iter().map(|(x, s)| (*x, y(s.max)));
        let lower = points.iter().rev().map(|(x, s)| (*x, y(s.min)));
        chart
            .draw_series(std::iter::once(Polygon::new(
                upper.chain(lower).collect::<Vec<_>>(),
                colour(slot).mix(0.15).filled(),
            )))
            .map_err(|e| e.to_string())?;
    }
    arm_line(
        chart,
        slot,
        name,
        points.iter().map(|(x, s)| (*x, y(s.mean))),
    )
}

fn legend<'a, DB: DrawingBackend + 'a>(chart: &mut Chart<'a, DB>) -> Result<(), String> {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|e| e.to_string())
}

/// Draws the figures of every experiment found in `runs` (grouped by experiment name) into
/// `out`, file names prefixed with the experiment's name when there are several; returns each
/// experiment's prefix and summary.
pub fn plot_runs(runs: &[Run], out: &Path) -> anyhow::Result<Vec<(String, Summary)>> {
    register_font();
    let mut names: Vec<&str> = runs
        .iter()
        .map(|r| r.info.experiment.name.as_str())
        .collect();
    names.sort();
    names.dedup();
    let mut summaries = Vec::new();
    for name in &names {
        let group: Vec<Run> = runs
            .iter()
            .filter(|r| r.info.experiment.name == *name)
            .cloned()
            .collect();
        let Some(summary) = summarize(&group) else {
            continue;
        };
        let prefix = if names.len() > 1 {
            format!("{name}-")
        } else {
            String::new()
        };
        let steps_per_epoch = group[0].info.steps_per_epoch;
        let grids = Selection::of(&summary)
            .filter(|selection| selection.families.iter().any(|f| f.points.len() > 1));
        // The curves of a tuned study are read at the chosen rates, one arm per family: thirty
        // curves in one figure would not be read at all.
        let shown = match &grids {
            Some(selection) => chosen_arms_only(&summary, selection),
            None => summary.clone(),
        };
        for ext in ["png", "svg"] {
            let path = |what: &str| out.join(format!("{prefix}{what}.{ext}"));
            curve_figure(&shown, &path("train_loss"), "training loss", |e| {
                &e.train_loss
            })?;
            curve_figure(&shown, &path("test_accuracy"), "test accuracy", |e| {
                &e.test_accuracy
            })?;
            schedule_figure(&shown, steps_per_epoch, &path("schedules"))?;
            if shown.arms.iter().any(|a| !a.update_size.is_empty()) {
                update_size_figure(&shown, &path("update_size"))?;
            }
            if let Some(selection) = &grids {
                lr_sensitivity_figure(&summary, selection, &path("lr_sensitivity"))?;
            }
        }
        summaries.push((prefix, summary));
    }
    Ok(summaries)
}

/// `summary` with only each family's chosen arm (and a caption that says so).
fn chosen_arms_only(summary: &Summary, selection: &Selection) -> Summary {
    let chosen: Vec<&str> = selection
        .families
        .iter()
        .filter_map(|f| f.selected.as_deref())
        .collect();
    let mut shown = summary.clone();
    shown.arms.retain(|a| chosen.contains(&a.name.as_str()));
    shown
        .experiment
        .arms
        .retain(|a| chosen.contains(&a.name.as_str()));
    shown.experiment.name = format!("{}, chosen rates", summary.experiment.name);
    shown
}

/// Renders into a PNG or SVG file by extension, written atomically.
fn render(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> anyhow::Result<()>,
    draw_png: impl FnOnce(&DrawingArea<BitMapBackend, Shift>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let temp = super::temp_beside(path)?;
    let fail = |e: String| anyhow::anyhow!("cannot draw {}: {e}", path.display());
    if path.extension().is_some_and(|e| e == "svg") {
        let area = SVGBackend::new(temp.path(), size).into_drawing_area();
        area.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
        draw(&area)?;
        area.present().map_err(|e| fail(e.to_string()))?;
    } else {
        let area = BitMapBackend::new(temp.path(), size).into_drawing_area();
        area.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
        draw_png(&area)?;
        area.present().map_err(|e| fail(e.to_string()))?;
    }
    temp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn curve_figure(
    summary: &Summary,
    path: &Path,
    label: &str,
    metric: fn(&EpochSpread) -> &Spread,
) -> anyhow::Result<()> {
    let series: Vec<(&str, Vec<(f64, Spread)>)> = summary
        .arms
        .iter()
        .map(|arm| {
            let points = arm
                .curves
                .iter()
                .map(|e| (e.epoch as f64, metric(e).clone()))
                .collect();
            (arm.name.as_str(), points)
        })
        .collect();
    Banded {
        summary,
        label,
        series,
        log_y: false,
    }
    .render(path)
}

/// The update size per arm over the run (log scale, seed bands): whether a decaying exponent
/// only shrinks the steps shows here.
fn update_size_figure(summary: &Summary, path: &Path) -> anyhow::Result<()> {
    let series = summary
        .arms
        .iter()
        .map(|arm| {
            let points = arm
                .update_size
                .iter()
                .map(|p| (p.position, p.value.clone()))
                .collect();
            (arm.name.as_str(), points)
        })
        .collect();
    Banded {
        summary,
        label: "update size (RMS of Δθ per step)",
        series,
        log_y: true,
    }
    .render(path)
}

/// Per arm, a mean over seeds with a min–max band, against epochs.
struct Banded<'a> {
    summary: &'a Summary,
    label: &'a str,
    series: Vec<(&'a str, Vec<(f64, Spread)>)>,
    /// Draw log10 of the values, labelled as powers of ten.
    log_y: bool,
}

impl Banded<'_> {
    fn render(&self, path: &Path) -> anyhow::Result<()> {
        render(
            path,
            (900, 600),
            |area| self.draw(area),
            |area| self.draw(area),
        )
    }

    fn y(&self, v: f64) -> f64 {
        if self.log_y { v.max(1e-30).log10() } else { v }
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> anyhow::Result<()> {
        let label = self.label;
        let fail = |e: String| anyhow::anyhow!("cannot draw {label}: {e}");
        let points = self.series.iter().flat_map(|(_, p)| p.iter());
        let x_max = points.clone().map(|(x, _)| *x).fold(1.0, f64::max);
        let x_min = points
            .clone()
            .map(|(x, _)| *x)
            .fold(x_max, f64::min)
            .min(1.0);
        let (lo, hi) = points.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (_, s)| {
            (lo.min(self.y(s.min)), hi.max(self.y(s.max)))
        });
        let (lo, hi) = if lo.is_finite() && hi > lo {
            let pad = 0.05 * (hi - lo);
            (lo - pad, hi + pad)
        } else if lo.is_finite() {
            (lo - 0.5, lo + 0.5)
        } else {
            (0.0, 1.0)
        };
        let seeds = self.summary.arms.first().map_or(1, |a| a.seeds.len());
        let caption = format!(
            "{} — {}{}",
            self.summary.experiment.name,
            label,
            if seeds > 1 {
                format!(" (mean of {seeds} seeds, band: min–max)")
            } else {
                String::new()
            }
        );
        let mut chart = epoch_chart(area, (caption, 22), x_min..x_max, lo..hi, label, self.log_y)
            .map_err(fail)?;
        for (name, points) in &self.series {
            let points: Vec<(f64, &Spread)> = points.iter().map(|(x, s)| (*x, s)).collect();
            let slot = arm_slot(&self.summary.experiment, name);
            banded_line(&mut chart, slot, name, &points, seeds > 1, |v| self.y(v)).map_err(fail)?;
        }
        legend(&mut chart).map_err(fail)?;
        Ok(())
    }
}

/// Final validation and test accuracy against the learning rate (log scale), one line per
/// family with a min–max band over seeds, the chosen rate ringed: how sensitive each optimizer
/// is to its rate, and whether a grid brackets its optimum.
fn lr_sensitivity_figure(
    summary: &Summary,
    selection: &Selection,
    path: &Path,
) -> anyhow::Result<()> {
    render(
        path,
        (1400, 600),
        |area| draw_lr_figure(area, summary, selection),
        |area| draw_lr_figure(area, summary, selection),
    )
}

/// What an lr-sensitivity panel draws of a grid point.
type GridMetric = fn(&GridPoint) -> Option<&Spread>;

/// One family's line in an lr-sensitivity panel.
type LrSeries<'a> = (usize, &'a str, Vec<(f64, &'a Spread)>, Option<(f64, f64)>);

fn draw_lr_figure<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    summary: &Summary,
    selection: &Selection,
) -> anyhow::Result<()> {
    let metrics: [(&str, GridMetric); 2] = [
        ("final validation accuracy", |p| {
            p.final_val_accuracy.as_ref()
        }),
        ("final test accuracy", |p| p.final_test_accuracy.as_ref()),
    ];
    for (panel, (label, metric)) in area.split_evenly((1, 2)).iter().zip(metrics) {
        draw_lr_panel(panel, summary, selection, label, metric)?;
    }
    Ok(())
}

fn draw_lr_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    summary: &Summary,
    selection: &Selection,
    label: &str,
    metric: GridMetric,
) -> anyhow::Result<()> {
    let fail = |e: String| anyhow::anyhow!("cannot draw {label} against lr: {e}");
    // Per family with a grid: its colour, name, (log10 lr, spread) at each rate, and the
    // chosen arm's point.
    let series: Vec<LrSeries> = selection
        .families
        .iter()
        .filter(|f| f.points.iter().filter(|p| p.lr.is_some()).count() > 1)
        .map(|f| {
            let points: Vec<(f64, &Spread)> = f
                .points
                .iter()
                .filter_map(|p| Some((p.lr?.log10(), metric(p)?)))
                .collect();
            let chosen = f.points.iter().find_map(|p| {
                (f.selected.as_deref() == Some(p.arm.as_str()))
                    .then(|| Some((p.lr?.log10(), metric(p)?.mean)))
                    .flatten()
            });
            (
                family_slot(&summary.experiment, &f.family),
                f.family.as_str(),
                points,
                chosen,
            )
        })
        .collect();
    let all = series.iter().flat_map(|(_, _, p, _)| p.iter());
    let (x_lo, x_hi) = all
        .clone()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (x, _)| {
            (lo.min(*x), hi.max(*x))
        });
    let (y_lo, y_hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (_, s)| {
        (lo.min(s.min), hi.max(s.max))
    });
    if !x_lo.is_finite() || !y_lo.is_finite() {
        return Ok(());
    }
    let pad = |lo: f64, hi: f64, at_least: f64| {
        let pad = (0.05 * (hi - lo)).max(at_least);
        (lo - pad)..(hi + pad)
    };
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("{} — {label} against lr", summary.experiment.name),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(pad(x_lo, x_hi, 0.1), pad(100.0 * y_lo, 100.0 * y_hi, 0.5))
        .map_err(|e| fail(e.to_string()))?;
    chart
        .configure_mesh()
        .x_desc("learning rate (log scale)")
        .y_desc(format!("{label} %"))
        .x_label_formatter(&|v| format!("{:.0e}", 10f64.powf(*v)))
        .draw()
        .map_err(|e| fail(e.to_string()))?;
    for (slot, family, points, chosen) in &series {
        let colour = colour(*slot);
        banded_line(&mut chart, *slot, family, points, true, |v| 100.0 * v).map_err(fail)?;
        if let Some((x, y)) = chosen {
            chart
                .draw_series(std::iter::once(Circle::new(
                    (*x, 100.0 * y),
                    7,
                    colour.stroke_width(2),
                )))
                .map_err(|e| fail(e.to_string()))?;
        }
    }
    legend(&mut chart).map_err(fail)?;
    Ok(())
}

/// The palette slot of one of the experiment's families (an arm of no family is its own) by
/// its identity: its optimizer, and how many families of that optimizer come before it. The
/// page colours its arms by the same rule, and no two families of one figure share a colour (up
/// to eight).
fn family_slot(spec: &ExperimentSpec, family: &str) -> usize {
    let mut families: Vec<(&str, &str)> = Vec::new();
    for arm in &spec.arms {
        if !families.iter().any(|(f, _)| *f == arm.family()) {
            families.push((arm.family(), arm.optimizer.kind()));
        }
    }
    let slots = palette::slots(families.iter().map(|(_, kind)| *kind));
    families
        .iter()
        .position(|(f, _)| *f == family)
        .map_or(0, |i| slots[i])
}

/// The palette slot of the arm named `name`: its family's.
fn arm_slot(spec: &ExperimentSpec, name: &str) -> usize {
    let family = spec
        .arms
        .iter()
        .find(|a| a.name == name)
        .map_or(name, |a| a.family());
    family_slot(spec, family)
}

fn schedule_figure(summary: &Summary, steps_per_epoch: u64, path: &Path) -> anyhow::Result<()> {
    render(
        path,
        (900, 700),
        |area| draw_schedules(area, summary, steps_per_epoch),
        |area| draw_schedules(area, summary, steps_per_epoch),
    )
}

fn draw_schedules<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    summary: &Summary,
    steps_per_epoch: u64,
) -> anyhow::Result<()> {
    let fail = |e: String| anyhow::anyhow!("cannot draw the schedules: {e}");
    let spec = &summary.experiment;
    let spe = steps_per_epoch.max(1);
    let total = spec.epochs * spe;
    let (upper, lower) = area.split_vertically(350);
    let panels: [(&DrawingArea<DB, Shift>, &str, bool); 2] = [
        (&upper, "exponent p(t)", true),
        (&lower, "learning rate η(t)", false),
    ];
    for (panel, label, exponent) in panels {
        let series: Vec<(usize, Vec<(f64, f64)>)> = spec
            .arms
            .iter()
            .enumerate()
            .filter_map(|(i, arm)| {
                let planned = arm.planned(total, spe, 400);
                let values = match (exponent, planned.lr) {
                    (true, _) => planned.exponent,
                    (false, Some(lr)) => Some(lr),
                    // A matched arm's rate is whatever it took: the mean over seeds.
                    (false, None) => summary.arms.get(i).map(|a| {
                        a.matched_lr
                            .iter()
                            .map(|s| (s.position, s.value.mean))
                            .collect()
                    }),
                };
                values.filter(|v| !v.is_empty()).map(|v| (i, v))
            })
            .collect();
        // Learning rates differ by orders of magnitude between families: plot log10 η.
        let series: Vec<(usize, Vec<(f64, f64)>)> = if exponent {
            series
        } else {
            series
                .into_iter()
                .map(|(i, v)| {
                    (
                        i,
                        v.into_iter()
                            .map(|(x, y)| (x, y.max(1e-12).log10()))
                            .collect(),
                    )
                })
                .collect()
        };
        let values = series.iter().flat_map(|(_, v)| v.iter().map(|p| p.1));
        let (lo, hi) = if exponent {
            (0.0, values.fold(0.0f64, f64::max).max(0.1) * 1.1)
        } else {
            let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            });
            if lo.is_finite() {
                (lo.floor() - 0.25, hi.ceil() + 0.25)
            } else {
                (-4.0, 0.0)
            }
        };
        let caption = (format!("{} — {label}", spec.name), 20);
        let mut chart = epoch_chart(
            panel,
            caption,
            0f64..spec.epochs as f64,
            lo..hi,
            label,
            !exponent,
        )
        .map_err(fail)?;
        for (i, values) in series {
            let name = &spec.arms[i].name;
            arm_line(&mut chart, arm_slot(spec, name), name, values).map_err(fail)?;
        }
        legend(&mut chart).map_err(fail)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_family_of_a_tuned_study_gets_a_colour_of_its_own() {
        let summary = Summary {
            experiment: super::super::experiment::load(None, Some("fashion-tuned")).unwrap(),
            arms: Vec::new(),
            computed_on: Vec::new(),
        };
        let families = [
            "SGDM",
            "Adam (p = 0.5)",
            "Adam, lr linear → 0",
            "AdaExp 0.5 → 0",
            "Padam (p = 1/8)",
            "Adam matched to AdaExp 0.5 → 0",
            "AdaExp matched to Adam, lr linear → 0",
        ];
        let slots: Vec<usize> = families
            .iter()
            .map(|f| family_slot(&summary.experiment, f))
            .collect();
        // SGDM, Adam, Padam and AdaExp in their own colours (the page's); the second Adam-family
        // arm in the matched control's; the rest in the lowest free.
        assert_eq!(slots, [0, 1, 5, 3, 2, 4, 6]);
    }
}
