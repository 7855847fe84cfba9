//! Inline SVG line charts with date axes, downsampled to the pixel grid.
//!
//! A chart maps time (Unix seconds) linearly to x and a value to y inside a plot frame
//! with margins for the axis labels. Long series are reduced per pixel column to the
//! first, lowest, highest and last point of the column (in time order), so the drawn
//! line keeps every spike while a 1M-point curve becomes a few thousand vertices.

use std::fmt::Write;

use chrono::{DateTime, Datelike, NaiveDate};

use super::format::grouped;

/// Width of every chart's viewBox, in SVG user units (pixels at 100%).
pub(crate) const WIDTH: f64 = 960.0;
const LEFT: f64 = 78.0;
const RIGHT: f64 = 18.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 28.0;

/// How the y-axis labels print a value.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Axis {
    /// Plain numbers with thousands separators (equity).
    Money,
    /// Fractions shown as percentages (drawdown).
    Percent,
}

/// The mapping from data to the plot area of one chart.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Frame {
    pub(crate) height: f64,
    t0: i64,
    t1: i64,
    range: ValueRange,
}

impl Frame {
    /// A frame `height` units tall over times `[t0, t1]` and a value range.
    pub(crate) fn new(height: f64, t0: i64, t1: i64, range: ValueRange) -> Frame {
        // A single instant still gets a non-empty time range.
        let t1 = if t1 > t0 { t1 } else { t0 + 1 };
        Frame {
            height,
            t0,
            t1,
            range,
        }
    }

    pub(crate) fn plot_left(&self) -> f64 {
        LEFT
    }
    pub(crate) fn plot_right(&self) -> f64 {
        WIDTH - RIGHT
    }
    pub(crate) fn plot_top(&self) -> f64 {
        TOP
    }
    pub(crate) fn plot_bottom(&self) -> f64 {
        self.height - BOTTOM
    }

    /// x of a timestamp.
    pub(crate) fn x(&self, t: i64) -> f64 {
        let fraction = (t - self.t0) as f64 / (self.t1 - self.t0) as f64;
        LEFT + fraction * (self.plot_right() - LEFT)
    }

    /// y of a value.
    pub(crate) fn y(&self, v: f64) -> f64 {
        let fraction = (self.range.high - v) / (self.range.high - self.range.low);
        TOP + fraction * (self.plot_bottom() - TOP)
    }

    /// Number of pixel columns of the plot area.
    fn columns(&self) -> usize {
        (self.plot_right() - LEFT).round() as usize
    }
}

/// Indices of the points to draw: per pixel column, the first, lowest, highest and
/// last point, in time order. `timestamps` must be non-decreasing.
pub(crate) fn downsample(frame: &Frame, timestamps: &[i64], values: &[f64]) -> Vec<usize> {
    let columns = frame.columns().max(1);
    let span = (frame.t1 - frame.t0) as f64;
    let column_of = |t: i64| {
        let fraction = (t - frame.t0) as f64 / span;
        ((fraction * columns as f64) as usize).min(columns - 1)
    };
    let mut picked = Vec::with_capacity((4 * columns).min(values.len()));
    let mut start = 0;
    while start < values.len() {
        let column = column_of(timestamps[start]);
        let mut end = start + 1;
        let (mut low, mut high) = (start, start);
        while end < values.len() && column_of(timestamps[end]) == column {
            if values[end] < values[low] {
                low = end;
            }
            if values[end] > values[high] {
                high = end;
            }
            end += 1;
        }
        let mut bucket = [start, low, high, end - 1];
        bucket.sort_unstable();
        for (k, &index) in bucket.iter().enumerate() {
            if k == 0 || index != bucket[k - 1] {
                picked.push(index);
            }
        }
        start = end;
    }
    picked
}

/// A value range for an axis: its ends are multiples of its tick step, so the frame's
/// top and bottom edges carry labelled grid lines.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ValueRange {
    pub(crate) low: f64,
    pub(crate) high: f64,
    pub(crate) step: f64,
}

impl ValueRange {
    /// The smallest range of about five round steps (1, 2, 2.5 or 5 times a power of
    /// ten) containing `[low, high]`; a flat range is widened by 1% first.
    pub(crate) fn covering(low: f64, high: f64) -> ValueRange {
        let (low, high) = if high > low {
            (low, high)
        } else {
            let pad = low.abs().max(1.0) * 0.01;
            (low - pad, high + pad)
        };
        let step = nice_step(high - low, 5.0);
        // Tolerate rounding: 0.30000000000000004 / 0.1 is on a step, not past it.
        ValueRange {
            low: (low / step + 1e-9).floor() * step,
            high: (high / step - 1e-9).ceil() * step,
            step,
        }
    }

    /// The tick values from `low` to `high`.
    pub(crate) fn ticks(&self) -> Vec<f64> {
        let first = (self.low / self.step).round() as i64;
        let last = (self.high / self.step).round() as i64;
        (first..=last).map(|k| k as f64 * self.step).collect()
    }
}

/// The round step (1, 2, 2.5 or 5 times a power of ten) cutting `span` into closest to
/// `target` pieces.
fn nice_step(span: f64, target: f64) -> f64 {
    let span = span.abs().max(f64::MIN_POSITIVE);
    let magnitude = 10f64.powf((span / target).log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .min_by(|a, b| {
            let miss = |step: f64| (span / step - target).abs();
            miss(*a).total_cmp(&miss(*b))
        })
        .unwrap_or(magnitude)
}

fn axis_label(axis: Axis, value: f64, step: f64) -> String {
    // A tick computed as k * step can land a rounding error away from 0: print 0, not -0.
    let value = if value.abs() < step * 1e-6 {
        0.0
    } else {
        value
    };
    match axis {
        Axis::Money => {
            let decimals = (-step.log10().floor()).max(0.0) as usize;
            grouped(value, decimals)
        }
        Axis::Percent => {
            let decimals = (-(step * 100.0).log10().floor()).max(0.0) as usize;
            format!("{:.*}%", decimals, value * 100.0)
        }
    }
}

/// Writes horizontal grid lines with value labels.
pub(crate) fn y_axis(out: &mut String, frame: &Frame, axis: Axis) {
    let step = frame.range.step;
    for tick in frame.range.ticks() {
        let y = frame.y(tick);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}"/><text class="ylabel" x="{:.1}" y="{:.1}">{}</text>"#,
            frame.plot_left(),
            frame.plot_right(),
            frame.plot_left() - 6.0,
            y + 4.0,
            axis_label(axis, tick, step),
        );
    }
}

/// Calendar-aligned tick spacing for a time axis.
#[derive(Debug, Clone, Copy, PartialEq)]
enum TimeStep {
    Seconds(i64),
    Months(u32),
}

const MINUTE: i64 = 60;
const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

fn time_step(span: i64, target: i64) -> TimeStep {
    let candidates = [
        TimeStep::Seconds(MINUTE),
        TimeStep::Seconds(5 * MINUTE),
        TimeStep::Seconds(15 * MINUTE),
        TimeStep::Seconds(30 * MINUTE),
        TimeStep::Seconds(HOUR),
        TimeStep::Seconds(3 * HOUR),
        TimeStep::Seconds(6 * HOUR),
        TimeStep::Seconds(12 * HOUR),
        TimeStep::Seconds(DAY),
        TimeStep::Seconds(2 * DAY),
        TimeStep::Seconds(7 * DAY),
        TimeStep::Seconds(14 * DAY),
        TimeStep::Months(1),
        TimeStep::Months(2),
        TimeStep::Months(3),
        TimeStep::Months(6),
        TimeStep::Months(12),
        TimeStep::Months(24),
        TimeStep::Months(60),
        TimeStep::Months(120),
        TimeStep::Months(240),
        TimeStep::Months(600),
    ];
    let approximate = |step: &TimeStep| match *step {
        TimeStep::Seconds(s) => s,
        TimeStep::Months(m) => i64::from(m) * 30 * DAY,
    };
    candidates
        .into_iter()
        .find(|step| span / approximate(step) <= target)
        .unwrap_or(TimeStep::Months(1200))
}

fn month_start(year: i32, month0: u32) -> Option<i64> {
    let year = year + (month0 / 12) as i32;
    let date = NaiveDate::from_ymd_opt(year, month0 % 12 + 1, 1)?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp())
}

/// Tick timestamps in `[t0, t1]` with their labels.
pub(crate) fn time_ticks(t0: i64, t1: i64, target: i64) -> Vec<(i64, String)> {
    let step = time_step(t1 - t0, target);
    let label = |t: i64| {
        let Some(moment) = DateTime::from_timestamp(t, 0) else {
            return t.to_string();
        };
        let pattern = match step {
            TimeStep::Months(m) if m % 12 == 0 => "%Y",
            TimeStep::Months(_) => "%b %Y",
            TimeStep::Seconds(s) if s >= DAY => "%Y-%m-%d",
            TimeStep::Seconds(_) if t.rem_euclid(DAY) == 0 => "%b %d",
            TimeStep::Seconds(_) => "%H:%M",
        };
        moment.format(pattern).to_string()
    };
    let mut ticks = Vec::new();
    match step {
        TimeStep::Seconds(s) => {
            let mut t = t0.div_euclid(s) * s;
            if t < t0 {
                t += s;
            }
            while t <= t1 && ticks.len() < 64 {
                ticks.push((t, label(t)));
                t += s;
            }
        }
        TimeStep::Months(m) => {
            let Some(start) = DateTime::from_timestamp(t0, 0) else {
                return ticks;
            };
            let mut month0 = start.month0().div_ceil(m) * m;
            while ticks.len() < 64 {
                let Some(t) = month_start(start.year(), month0) else {
                    break;
                };
                if t > t1 {
                    break;
                }
                if t >= t0 {
                    ticks.push((t, label(t)));
                }
                month0 += m;
            }
        }
    }
    ticks
}

/// Writes vertical grid lines with date labels under the plot.
pub(crate) fn x_axis(out: &mut String, frame: &Frame) {
    for (t, text) in time_ticks(frame.t0, frame.t1, 8) {
        let x = frame.x(t);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}"/><text class="xlabel" x="{x:.1}" y="{:.1}">{text}</text>"#,
            frame.plot_top(),
            frame.plot_bottom(),
            frame.plot_bottom() + 18.0,
        );
    }
    let _ = write!(
        out,
        r#"<rect class="frame" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}"/>"#,
        frame.plot_left(),
        frame.plot_top(),
        frame.plot_right() - frame.plot_left(),
        frame.plot_bottom() - frame.plot_top(),
    );
}

/// `x,y x,y ...` of the downsampled points.
pub(crate) fn points(
    frame: &Frame,
    timestamps: &[i64],
    values: &[f64],
    picked: &[usize],
) -> String {
    let mut out = String::with_capacity(picked.len() * 12);
    for (k, &i) in picked.iter().enumerate() {
        if k > 0 {
            out.push(' ');
        }
        let _ = write!(
            out,
            "{:.1},{:.1}",
            frame.x(timestamps[i]),
            frame.y(values[i])
        );
    }
    out
}

/// Opens an `<svg>` of the chart's size.
pub(crate) fn open(out: &mut String, frame: &Frame, label: &str) {
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {h}" width="{WIDTH}" height="{h}" role="img" aria-label="{label}">"#,
        h = frame.height,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downsampling_keeps_extremes_and_bounds_the_size() {
        let n = 100_000;
        let ts: Vec<i64> = (0..n as i64).collect();
        let mut values: Vec<f64> = (0..n).map(|i| (i as f64 * 0.01).sin()).collect();
        values[54_321] = 50.0; // a spike must survive
        values[12_345] = -50.0;
        let frame = Frame::new(300.0, 0, n as i64 - 1, ValueRange::covering(-50.0, 50.0));
        let picked = downsample(&frame, &ts, &values);
        assert!(picked.len() <= 4 * frame.columns(), "{}", picked.len());
        assert!(picked.contains(&54_321) && picked.contains(&12_345));
        assert_eq!((picked[0], picked[picked.len() - 1]), (0, n - 1));
        assert!(picked.windows(2).all(|w| w[0] < w[1]), "time order");
    }

    #[test]
    fn short_series_are_drawn_whole() {
        let ts = [0, 10, 20];
        let frame = Frame::new(200.0, 0, 20, ValueRange::covering(0.0, 3.0));
        assert_eq!(downsample(&frame, &ts, &[1.0, 3.0, 2.0]), vec![0, 1, 2]);
    }

    #[test]
    fn value_ranges_are_round_and_end_on_ticks() {
        let range = ValueRange::covering(93.0, 147.0);
        assert_eq!((range.low, range.high, range.step), (90.0, 150.0, 10.0));
        assert_eq!(
            range.ticks(),
            vec![90.0, 100.0, 110.0, 120.0, 130.0, 140.0, 150.0]
        );
        let range = ValueRange::covering(-0.2948 * 1.04, 0.0);
        assert!((range.low + 0.35).abs() < 1e-12 && range.high == 0.0 && range.step == 0.05);
        for (low, high) in [(89_000.0, 193_000.0), (0.37, 0.81), (0.3, 0.9), (5.0, 5.0)] {
            let range = ValueRange::covering(low, high);
            let slack = range.step * 1e-9;
            assert!(
                range.low <= low + slack && range.high >= high - slack,
                "{low}..{high}: {range:?}"
            );
            let ticks = range.ticks();
            assert!((3..=8).contains(&ticks.len()), "{low}..{high}: {ticks:?}");
            assert!((ticks[0] - range.low).abs() < range.step * 1e-9);
            assert!((ticks[ticks.len() - 1] - range.high).abs() < range.step * 1e-9);
        }
        // exact ends stay exact: 0.3..0.9 in steps of 0.1 is not widened
        assert_eq!(ValueRange::covering(0.3, 0.9).ticks().len(), 7);
        assert_eq!(axis_label(Axis::Percent, -0.05, 0.05), "-5%");
        assert_eq!(axis_label(Axis::Percent, -1e-18, 0.05), "0%");
        assert_eq!(axis_label(Axis::Money, 125_000.0, 5_000.0), "125,000");
        assert_eq!(axis_label(Axis::Money, 1.25, 0.05), "1.25");
    }

    #[test]
    fn time_ticks_follow_the_calendar() {
        // 2015-06-15 .. 2023-03-01: yearly ticks on 1 January
        let ticks = time_ticks(1_434_326_400, 1_677_628_800, 8);
        let labels: Vec<&str> = ticks.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(
            labels,
            vec![
                "2016", "2017", "2018", "2019", "2020", "2021", "2022", "2023"
            ]
        );
        assert_eq!(ticks[0].0, 1_451_606_400); // 2016-01-01T00:00:00Z
        // 2019-06-15 .. 2023-03-01: half-yearly
        let ticks = time_ticks(1_560_556_800, 1_677_628_800, 8);
        assert_eq!(
            (ticks[0].1.as_str(), ticks[1].1.as_str()),
            ("Jul 2019", "Jan 2020")
        );
        // five months: monthly ticks
        let ticks = time_ticks(1_577_836_800, 1_577_836_800 + 150 * DAY, 8);
        assert_eq!(ticks[0].1, "Jan 2020");
        assert_eq!(ticks[1].1, "Feb 2020");
        // one trading day of minutes: hourly ticks
        let open = 1_577_836_800 + 14 * HOUR + 30 * MINUTE;
        let ticks = time_ticks(open, open + 6 * HOUR + 30 * MINUTE, 8);
        assert_eq!(ticks[0].1, "15:00");
        assert!(
            ticks
                .iter()
                .all(|(t, _)| (open..=open + 6 * HOUR + 30 * MINUTE).contains(t))
        );
    }

    #[test]
    fn frame_maps_corners() {
        let frame = Frame::new(300.0, 100, 200, ValueRange::covering(0.0, 10.0));
        assert_eq!(frame.x(100), frame.plot_left());
        assert_eq!(frame.x(200), frame.plot_right());
        assert_eq!(frame.y(10.0), frame.plot_top());
        assert_eq!(frame.y(0.0), frame.plot_bottom());
        // degenerate ranges still map inside the frame
        let flat = Frame::new(300.0, 5, 5, ValueRange::covering(1.0, 1.0));
        assert!(flat.x(5).is_finite() && flat.y(1.0) > flat.plot_top());
    }
}
