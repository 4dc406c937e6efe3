//! Charts of a load benchmark as a standalone SVG document: throughput (submitted and
//! committed transactions per second) above latency (p50 and p99, in ms), sharing the
//! time axis. Plain text, standard library only.

use std::fmt::Write as _;

/// One second (or other window) of a benchmark run.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Sample {
    /// Seconds since the measured part of the run began (end of the window).
    pub t_s: f64,
    /// Transactions sent in the window, per second.
    pub submitted_per_s: f64,
    /// Transactions committed in the window, per second.
    pub committed_per_s: f64,
    /// Submit-to-commit latency of the transactions committed in the window, in ms
    /// (NaN when none were committed in it).
    pub p50_ms: f64,
    /// As `p50_ms`, the 99th percentile.
    pub p99_ms: f64,
}

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 620.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 870.0;
const LEGEND_ENTRY: f64 = 120.0;
const GRID: &str = "#e5e5e5";
const INK: &str = "#333";

/// One line of a panel: its name in the legend, its colour and how to read it.
struct Series {
    name: &'static str,
    colour: &'static str,
    value: fn(&Sample) -> f64,
}

/// A panel: its vertical extent in px, the label of its y axis and its series.
struct Panel<'a> {
    top: f64,
    bottom: f64,
    label: &'a str,
    series: &'a [Series],
}

/// A linear axis from `lo` to `hi` (with `hi > lo`), ticked every `step`.
#[derive(Clone, Copy, Debug)]
struct Axis {
    lo: f64,
    hi: f64,
    step: f64,
}

impl Axis {
    /// Where `v` falls between `lo` (0) and `hi` (1), clamped to the axis.
    fn fraction(&self, v: f64) -> f64 {
        let f = (v - self.lo) / (self.hi - self.lo);
        if f.is_finite() {
            f.clamp(0.0, 1.0)
        } else {
            0.0
        }
    }

    /// The multiples of `step` within `lo..=hi` (at most 200 of them).
    fn ticks(&self) -> Vec<f64> {
        let first = (self.lo / self.step - 1e-9).ceil();
        let mut out = Vec::new();
        for i in 0..200_u32 {
            let v = (first + f64::from(i)) * self.step;
            if !v.is_finite() || v > self.hi + self.step * 1e-9 {
                break;
            }
            // Snap rounding noise (and -0) to an exact zero.
            out.push(if v.abs() < self.step * 1e-9 { 0.0 } else { v });
        }
        out
    }
}

/// The smallest step of 1, 2 or 5 × 10^k that covers `span` in at most `max_intervals`.
fn nice_step(span: f64, max_intervals: u32) -> f64 {
    if !(span.is_finite() && span > 0.0) {
        return 1.0;
    }
    let limit = f64::from(max_intervals.max(1));
    let exponent = (span / limit).log10().floor() - 1.0;
    let mut step = 1.0;
    for decade in 0..4_u32 {
        for m in [1.0, 2.0, 5.0] {
            step = m * 10_f64.powf(exponent + f64::from(decade));
            if (span / step - 1e-9).ceil() <= limit {
                return step;
            }
        }
    }
    step
}

/// A y axis from 0 to a nice ceiling at or above `max` (0..1 when there is nothing above 0),
/// with 4 to 6 ticks.
fn y_axis(max: f64) -> Axis {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        1.0
    };
    let step = nice_step(max, 5);
    let hi = (max / step - 1e-9).ceil().max(1.0) * step;
    Axis {
        lo: 0.0,
        hi: if hi.is_finite() { hi } else { max },
        step,
    }
}

/// The time axis: from 0 (or the earliest time, if negative) to the last time.
fn x_axis(samples: &[Sample]) -> Axis {
    let times = samples.iter().map(|s| s.t_s).filter(|t| t.is_finite());
    let lo = times.clone().fold(0.0, f64::min);
    let mut hi = times.fold(f64::NEG_INFINITY, f64::max);
    if hi <= lo {
        hi = lo + 1.0;
    }
    Axis {
        lo,
        hi,
        step: nice_step(hi - lo, 10),
    }
}

/// How many decimals a tick step needs (0 for steps of 1 and above).
fn decimals(step: f64) -> usize {
    let (mut s, mut d) = (step.abs(), 0);
    while s > 0.0 && s < 0.999_999 && d < 9 {
        s *= 10.0;
        d += 1;
    }
    d
}

/// The label of a tick: thousands with a "k" from 10,000, scientific notation from 10^12.
fn tick_label(v: f64, step: f64) -> String {
    if v.abs() >= 1e12 {
        format!("{v:.1e}")
    } else if v.abs() >= 10_000.0 {
        format!("{:.*}k", decimals(step / 1000.0), v / 1000.0)
    } else {
        format!("{:.*}", decimals(step), v)
    }
}

/// `text` with the XML special characters escaped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            _ => out.push(c),
        }
    }
    out
}

/// The runs of consecutive finite `(t, value)` points; a non-finite one ends a run.
fn segments(samples: &[Sample], value: fn(&Sample) -> f64) -> Vec<Vec<(f64, f64)>> {
    let mut runs = vec![Vec::new()];
    for s in samples {
        let (t, v) = (s.t_s, value(s));
        if t.is_finite() && v.is_finite() {
            if let Some(run) = runs.last_mut() {
                run.push((t, v));
            }
        } else if runs.last().is_some_and(|run| !run.is_empty()) {
            runs.push(Vec::new());
        }
    }
    runs.retain(|run| !run.is_empty());
    runs
}

/// One `<text>` element with escaped content and extra attributes.
fn text(out: &mut String, x: f64, y: f64, attrs: &str, content: &str) {
    let _ = writeln!(
        out,
        r#"<text x="{x:.1}" y="{y:.1}" {attrs}>{}</text>"#,
        escape(content)
    );
}

/// One `<line>` element.
fn line(out: &mut String, (x1, y1): (f64, f64), (x2, y2): (f64, f64), stroke: &str) {
    let _ = writeln!(
        out,
        r#"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" stroke="{stroke}"/>"#
    );
}

/// Draws one panel: grid, axes, labels, legend and series. Tick labels of the time axis
/// are drawn under it only when `x_labels`.
fn draw_panel(out: &mut String, panel: &Panel<'_>, x: &Axis, samples: &[Sample], x_labels: bool) {
    let (top, bottom) = (panel.top, panel.bottom);
    let x_px = |v: f64| LEFT + x.fraction(v) * (RIGHT - LEFT);
    let max = samples
        .iter()
        .flat_map(|s| panel.series.iter().map(move |se| (se.value)(s)))
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let y = y_axis(max);
    let y_px = |v: f64| bottom - y.fraction(v) * (bottom - top);

    let small = r##"font-size="11" fill="#555""##;
    for v in y.ticks() {
        let py = y_px(v);
        line(out, (LEFT, py), (RIGHT, py), GRID);
        text(
            out,
            LEFT - 8.0,
            py + 4.0,
            &format!(r#"text-anchor="end" {small}"#),
            &tick_label(v, y.step),
        );
    }
    for v in x.ticks() {
        let px = x_px(v);
        line(out, (px, top), (px, bottom), GRID);
        if x_labels {
            let attrs = format!(r#"text-anchor="middle" {small}"#);
            text(out, px, bottom + 16.0, &attrs, &tick_label(v, x.step));
        }
    }
    line(out, (LEFT, top), (LEFT, bottom), INK);
    line(out, (LEFT, bottom), (RIGHT, bottom), INK);
    let mid = f64::midpoint(top, bottom);
    let rotate =
        format!(r#"text-anchor="middle" font-size="12" transform="rotate(-90 24 {mid:.1})""#);
    text(out, 24.0, mid, &rotate, panel.label);

    let mut lx = RIGHT;
    for se in panel.series.iter().rev() {
        lx -= LEGEND_ENTRY;
        let _ = writeln!(
            out,
            r#"<line x1="{lx:.1}" y1="{ly:.1}" x2="{x2:.1}" y2="{ly:.1}" stroke="{c}" stroke-width="3"/>"#,
            ly = top - 10.0,
            x2 = lx + 20.0,
            c = se.colour
        );
        text(out, lx + 26.0, top - 6.0, r#"font-size="12""#, se.name);
    }

    let mut any = false;
    for se in panel.series {
        for run in segments(samples, se.value) {
            any = true;
            if let &[(t, v)] = run.as_slice() {
                let _ = writeln!(
                    out,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}"/>"#,
                    x_px(t),
                    y_px(v),
                    se.colour
                );
                continue;
            }
            let points: Vec<String> = run
                .iter()
                .map(|&(t, v)| format!("{:.1},{:.1}", x_px(t), y_px(v)))
                .collect();
            let _ = writeln!(
                out,
                r#"<polyline fill="none" stroke="{}" stroke-width="1.8" stroke-linejoin="round" points="{}"/>"#,
                se.colour,
                points.join(" ")
            );
        }
    }
    if !any {
        let message = if samples.is_empty() {
            "no samples"
        } else {
            "no data"
        };
        let attrs = r##"text-anchor="middle" font-size="14" fill="#888""##;
        text(out, f64::midpoint(LEFT, RIGHT), mid + 5.0, attrs, message);
    }
}

/// An SVG document: two stacked panels sharing the time axis. The top panel plots
/// submitted and committed transactions per second; the bottom one plots p50 and p99
/// latency in ms. `title` goes above the panels, `subtitle` (e.g. the command and the
/// machine's load) under it in smaller type.
#[must_use]
pub fn render(title: &str, subtitle: &str, samples: &[Sample]) -> String {
    let rates = [
        Series {
            name: "submitted",
            colour: "#1f77b4",
            value: |s: &Sample| s.submitted_per_s,
        },
        Series {
            name: "committed",
            colour: "#2ca02c",
            value: |s: &Sample| s.committed_per_s,
        },
    ];
    let latencies = [
        Series {
            name: "p50",
            colour: "#ff7f0e",
            value: |s: &Sample| s.p50_ms,
        },
        Series {
            name: "p99",
            colour: "#d62728",
            value: |s: &Sample| s.p99_ms,
        },
    ];
    let x = x_axis(samples);
    let mut out = String::with_capacity(8192 + 64 * samples.len());
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif">"#
    );
    let _ = writeln!(
        out,
        r#"<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>"#
    );
    let centre = WIDTH / 2.0;
    text(
        &mut out,
        centre,
        30.0,
        r#"text-anchor="middle" font-size="18" font-weight="bold""#,
        title,
    );
    text(
        &mut out,
        centre,
        52.0,
        r##"text-anchor="middle" font-size="12" fill="#555""##,
        subtitle,
    );
    let top = Panel {
        top: 95.0,
        bottom: 305.0,
        label: "tx/s",
        series: &rates,
    };
    let bottom = Panel {
        top: 350.0,
        bottom: 560.0,
        label: "latency (ms)",
        series: &latencies,
    };
    draw_panel(&mut out, &top, &x, samples, false);
    draw_panel(&mut out, &bottom, &x, samples, true);
    let attrs = r#"text-anchor="middle" font-size="12""#;
    text(
        &mut out,
        f64::midpoint(LEFT, RIGHT),
        602.0,
        attrs,
        "time (s)",
    );
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn run(n: u32) -> Vec<Sample> {
        (1..=n)
            .map(|i| {
                let i = f64::from(i);
                Sample {
                    t_s: i,
                    submitted_per_s: 1000.0 + i,
                    committed_per_s: 990.0 + i,
                    p50_ms: 40.0 + i,
                    p99_ms: 90.0 + i,
                }
            })
            .collect()
    }

    #[test]
    fn a_normal_run_is_a_document_with_four_lines() {
        let svg = render("bench", "acta-testnet bench", &run(10));
        assert!(svg.trim().starts_with("<svg"));
        assert!(svg.trim().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 4);
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
        for label in [
            "tx/s",
            "latency (ms)",
            "time (s)",
            "submitted",
            "committed",
            "p50",
            "p99",
        ] {
            assert!(svg.contains(label), "{label}");
        }
    }

    #[test]
    fn a_gap_in_latency_splits_its_line() {
        let mut samples = run(10);
        samples[5].p50_ms = f64::NAN;
        let svg = render("bench", "", &samples);
        assert_eq!(svg.matches("<polyline").count(), 5);
        assert!(!svg.contains("NaN"));
    }

    #[test]
    fn no_samples_draws_axes_and_a_message() {
        let svg = render("bench", "", &[]);
        assert!(svg.contains("no samples"));
        assert!(!svg.contains("<polyline"));
        assert!(svg.trim().ends_with("</svg>"));
    }

    #[test]
    fn one_sample_is_a_marker() {
        let svg = render("bench", "", &run(1));
        assert!(!svg.contains("<polyline"));
        assert_eq!(svg.matches("<circle").count(), 4);
    }

    #[test]
    fn zeros_and_huge_values_stay_finite() {
        let zero = Sample {
            t_s: 1.0,
            submitted_per_s: 0.0,
            committed_per_s: 0.0,
            p50_ms: 0.0,
            p99_ms: 0.0,
        };
        let zeros = [
            zero,
            Sample { t_s: 2.0, ..zero },
            Sample { t_s: 3.0, ..zero },
        ];
        let svg = render("zeros", "", &zeros);
        assert!(svg.contains(">1.0<"), "the y axis goes to 1");
        let mut huge = run(5);
        huge[2].submitted_per_s = 1e300;
        huge[2].p99_ms = f64::INFINITY;
        let svg = render("huge", "", &huge);
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
        assert_eq!(svg.matches("<polyline").count(), 5);
        assert!(
            svg.contains(">1.0e300<"),
            "huge ticks in scientific notation"
        );
    }

    #[test]
    fn text_is_escaped() {
        let svg = render("a <b> & 'c'", "x\"y", &run(3));
        assert!(svg.contains("a &lt;b&gt; &amp; &apos;c&apos;"));
        assert!(svg.contains("x&quot;y"));
        assert!(!svg.contains("<b>"));
    }

    #[test]
    fn nice_ticks_are_1_2_5_steps_that_cover_the_max() {
        for max in [
            1e-3, 0.7, 1.0, 3.0, 9.9, 10.0, 10.1, 37.0, 99.0, 1234.0, 15_000.0, 7.3e9, 1e300,
        ] {
            let axis = y_axis(max);
            let mantissa = axis.step / 10_f64.powf(axis.step.log10().floor());
            assert!(
                [1.0, 2.0, 5.0, 10.0]
                    .iter()
                    .any(|m| (mantissa - m).abs() < 1e-6),
                "{max}: step {}",
                axis.step
            );
            assert!(axis.hi >= max * (1.0 - 1e-9), "{max}: {}", axis.hi);
            let ticks = axis.ticks().len();
            assert!((4..=6).contains(&ticks), "{max}: {ticks} ticks");
        }
        assert_eq!(tick_label(15_000.0, 5000.0), "15k");
        assert_eq!(tick_label(0.4, 0.2), "0.4");
        assert_eq!(tick_label(500.0, 100.0), "500");
    }
}
