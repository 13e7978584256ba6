//! A small SVG line chart: axes with ticks, one polyline per series, a legend underneath.

use leptos::prelude::*;

#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub label: String,
    pub colour: &'static str,
    pub points: Vec<(f64, f64)>,
    /// Drawn thin and translucent (raw values under a smoothed line).
    pub faint: bool,
    pub dashed: bool,
}

impl Series {
    /// A plain solid line.
    pub fn line(label: String, colour: &'static str, points: Vec<(f64, f64)>) -> Self {
        Series {
            label,
            colour,
            points,
            faint: false,
            dashed: false,
        }
    }
}

/// Fixed axis ranges (`None` fits the data) and the y scale.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Ranges {
    pub x: Option<(f64, f64)>,
    pub y: Option<(f64, f64)>,
    /// Logarithmic y axis (non-positive values are left out), for rates spanning decades.
    pub log_y: bool,
}

const WIDTH: f64 = 560.0;
const HEIGHT: f64 = 300.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 24.0;
const BOTTOM: f64 = 40.0;

/// Five evenly spaced ticks; on a log axis (values are log10) the whole decades instead, when
/// the range holds at least two.
fn ticks(lo: f64, hi: f64, log: bool) -> Vec<f64> {
    if log {
        let decades: Vec<f64> = (lo.ceil() as i32..=hi.floor() as i32)
            .map(f64::from)
            .collect();
        if decades.len() >= 2 {
            return decades;
        }
    }
    (0..=4)
        .map(|i| lo + (hi - lo) * f64::from(i) / 4.0)
        .collect()
}

fn label(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 100.0 || v.abs() < 0.01 {
        format!("{v:.1e}")
    } else {
        format!("{v:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned()
    }
}

pub fn line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    mut series: Vec<Series>,
    mut ranges: Ranges,
) -> impl IntoView + use<> {
    // A log axis is a linear axis over log10(y); only the tick labels go back to y.
    let shown = move |v: f64| if ranges.log_y { 10f64.powf(v) } else { v };
    if ranges.log_y {
        for s in &mut series {
            s.points = s
                .points
                .iter()
                .filter(|(_, y)| *y > 0.0)
                .map(|&(x, y)| (x, y.log10()))
                .collect();
        }
        ranges.y = ranges.y.map(|(lo, hi)| (lo.log10(), hi.log10()));
    }
    let finite = series
        .iter()
        .flat_map(|s| s.points.iter())
        .filter(|(x, y)| x.is_finite() && y.is_finite());
    let (x_lo, x_hi, y_lo, y_hi) = finite.fold(
        (
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ),
        |(a, b, c, d), &(x, y)| (a.min(x), b.max(x), c.min(y), d.max(y)),
    );
    let (x_lo, x_hi) = match ranges.x {
        Some(range) => range,
        None if x_lo.is_finite() && x_hi > x_lo => (x_lo, x_hi),
        None => (0.0, 1.0),
    };
    let (y_lo, y_hi) = match ranges.y {
        Some(range) => range,
        None if y_lo.is_finite() && y_hi > y_lo => {
            let pad = 0.05 * (y_hi - y_lo);
            (y_lo - pad, y_hi + pad)
        }
        None if y_lo.is_finite() => (y_lo - 0.5, y_hi + 0.5),
        None => (0.0, 1.0),
    };
    let sx = move |x: f64| LEFT + (x - x_lo) / (x_hi - x_lo) * (WIDTH - LEFT - RIGHT);
    let sy = move |y: f64| HEIGHT - BOTTOM - (y - y_lo) / (y_hi - y_lo) * (HEIGHT - TOP - BOTTOM);
    let lines = series
        .iter()
        .map(|s| {
            let points: String = s
                .points
                .iter()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .map(|&(x, y)| {
                    format!(
                        "{:.1},{:.1} ",
                        sx(x.clamp(x_lo, x_hi)),
                        sy(y.clamp(y_lo, y_hi))
                    )
                })
                .collect();
            // Sparse series (one point per epoch) also get dots, so a single point shows.
            let dots = if s.faint || s.points.len() > 40 {
                Vec::new()
            } else {
                s.points
                    .iter()
                    .filter(|(x, y)| x.is_finite() && y.is_finite())
                    .map(|&(x, y)| (sx(x.clamp(x_lo, x_hi)), sy(y.clamp(y_lo, y_hi))))
                    .collect()
            };
            let colour = s.colour;
            let dots = dots
                .into_iter()
                .map(|(cx, cy)| view! { <circle cx=cx cy=cy r="3" fill=colour /> })
                .collect_view();
            view! {
                {dots}
                <polyline
                    data-series=s.label.clone()
                    points=points
                    fill="none"
                    stroke=s.colour
                    stroke-width=if s.faint { "1" } else { "2" }
                    stroke-opacity=if s.faint { "0.25" } else { "1" }
                    stroke-dasharray=if s.dashed { "5 4" } else { "none" }
                />
            }
        })
        .collect_view();
    // The legend sits under the plot (HTML), so it never hides a line.
    let legend = series
        .iter()
        .filter(|s| !s.faint && !s.dashed)
        .map(|s| {
            view! {
                <li><span class="swatch" style=format!("background: {}", s.colour)></span>{s.label.clone()}</li>
            }
        })
        .collect_view();
    let x_ticks = ticks(x_lo, x_hi, false)
        .into_iter()
        .map(|x| {
            view! {
                <text x=sx(x) y=HEIGHT - BOTTOM + 16.0 class="tick" text-anchor="middle">{label(x)}</text>
            }
        })
        .collect_view();
    let y_ticks = ticks(y_lo, y_hi, ranges.log_y)
        .into_iter()
        .map(|y| {
            view! {
                <line x1=LEFT x2=WIDTH - RIGHT y1=sy(y) y2=sy(y) class="grid" />
                <text x=LEFT - 6.0 y=sy(y) + 4.0 class="tick" text-anchor="end">{label(shown(y))}</text>
            }
        })
        .collect_view();
    view! {
        <figure class="chart">
        <svg viewBox=format!("0 0 {WIDTH} {HEIGHT}") role="img" aria-label=title.to_owned()>
            <text x=WIDTH / 2.0 y=16 class="title" text-anchor="middle">{title.to_owned()}</text>
            {y_ticks}
            {x_ticks}
            <line x1=LEFT x2=LEFT y1=TOP y2=HEIGHT - BOTTOM class="axis" />
            <line x1=LEFT x2=WIDTH - RIGHT y1=HEIGHT - BOTTOM y2=HEIGHT - BOTTOM class="axis" />
            <text x=(LEFT + WIDTH - RIGHT) / 2.0 y=HEIGHT - 6.0 class="axis-label" text-anchor="middle">{x_label.to_owned()}</text>
            <text x=14 y=(TOP + HEIGHT - BOTTOM) / 2.0 class="axis-label" text-anchor="middle"
                transform=format!("rotate(-90 14 {})", (TOP + HEIGHT - BOTTOM) / 2.0)>{y_label.to_owned()}</text>
            {lines}
        </svg>
        <ul class="legend">{legend}</ul>
        </figure>
    }
}

/// A chart with nothing to draw yet: its title and `message` where the plot will be, no axes (an
/// empty 0–1 frame reads as data).
pub fn empty_chart(title: &str, message: &str) -> impl IntoView + use<> {
    view! {
        <figure class="chart empty">
        <svg viewBox=format!("0 0 {WIDTH} {HEIGHT}") role="img" aria-label=title.to_owned()>
            <text x=WIDTH / 2.0 y=16 class="title" text-anchor="middle">{title.to_owned()}</text>
            <text x=WIDTH / 2.0 y=HEIGHT / 2.0 class="message" text-anchor="middle">{message.to_owned()}</text>
        </svg>
        </figure>
    }
}
