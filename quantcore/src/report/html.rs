//! The self-contained HTML report.

use std::fmt::Write;
use std::path::Path;

use super::format::{Cell, date_time, percent, ratio, sections};
use super::svg::{self, Axis, Frame, ValueRange};
use crate::error::{Error, Result};
use crate::metrics::drawdown::check_curve;
use crate::metrics::{Metric, Metrics};

const EQUITY_HEIGHT: f64 = 340.0;
const DRAWDOWN_HEIGHT: f64 = 200.0;

const STYLE: &str = "
body { font-family: -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif;
       color: #1d2330; background: #f6f7f9; margin: 0; }
main { max-width: 1000px; margin: 0 auto; padding: 24px 20px 40px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 28px 0 8px; color: #3a4255; }
.subtitle { color: #6b7385; margin: 0 0 18px; font-size: 14px; }
.cards { display: grid; grid-template-columns: repeat(6, 1fr); gap: 10px; }
.card { background: #fff; border: 1px solid #e1e4ea; border-radius: 6px; padding: 10px 12px; }
.card .label { font-size: 12px; color: #6b7385; }
.card .value { font-size: 20px; font-weight: 600; margin-top: 2px; }
.card .value.na { color: #9aa1b1; }
.panel { background: #fff; border: 1px solid #e1e4ea; border-radius: 6px; padding: 8px 0 4px; }
svg.chart { display: block; width: 100%; height: auto; }
svg .grid { stroke: #e7e9ee; stroke-width: 1; }
svg .frame { fill: none; stroke: #c9ced8; stroke-width: 1; }
svg text { font-size: 11px; fill: #6b7385; }
svg .ylabel { text-anchor: end; }
svg .xlabel { text-anchor: middle; }
svg .equity { fill: none; stroke: #2563eb; stroke-width: 1.5; stroke-linejoin: round; }
svg .capital { stroke: #9aa1b1; stroke-width: 1; stroke-dasharray: 4 3; }
svg .episode { fill: #dc2626; fill-opacity: 0.07; }
svg .peak { fill: #16a34a; } svg .trough { fill: #dc2626; }
svg .marker { font-size: 11px; fill: #3a4255; }
svg .underwater { fill: #dc2626; fill-opacity: 0.25; stroke: #dc2626; stroke-width: 1; stroke-linejoin: round; }
.legend { font-size: 12px; color: #6b7385; padding: 2px 0 0 78px; }
.swatch { display: inline-block; width: 18px; height: 10px; margin: 0 6px 0 14px; vertical-align: -1px; }
.swatch.line { border-top: 2px solid #2563eb; height: 0; vertical-align: 3px; margin-left: 0; }
.swatch.dash { border-top: 1px dashed #9aa1b1; height: 0; vertical-align: 3px; }
.swatch.box { background: #dc2626; opacity: 0.12; }
.tables { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; align-items: start; }
table { width: 100%; border-collapse: collapse; background: #fff; border: 1px solid #e1e4ea;
        border-radius: 6px; font-size: 13px; }
th { text-align: left; font-size: 13px; padding: 8px 12px; background: #eef0f4; color: #3a4255; }
td { padding: 5px 12px; border-top: 1px solid #eef0f4; }
td.value { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.na { color: #9aa1b1; font-style: italic; text-align: right; }
footer { margin-top: 24px; font-size: 12px; color: #6b7385; }
";

/// Escapes text for HTML content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A self-contained HTML report: headline figures, an equity chart (with the maximum
/// drawdown episode shaded and the starting capital dashed), an underwater
/// (drawdown) chart, both with date axes, and the full metrics table.
///
/// The page has no scripts and loads nothing: styles are inline and the charts are
/// inline SVG, downsampled to the pixel grid (per pixel column the first, lowest,
/// highest and last point), so a 1M-point curve gives a page of a few hundred KB at
/// most. `title` is escaped. `timestamps` and `equity` are the curve `metrics` was
/// computed from.
///
/// ```
/// use quantcore::metrics::{Metrics, MetricsConfig};
/// let day = 86_400;
/// let (ts, equity) = ([0, day, 2 * day, 3 * day], [100.0, 104.0, 97.0, 103.0]);
/// let m = Metrics::compute(&ts, &equity, &[3.0], &MetricsConfig::default())?;
/// let page = quantcore::report::html("Momentum <SPY>", &ts, &equity, &m)?;
/// assert!(page.starts_with("<!DOCTYPE html>"));
/// assert!(page.contains("Momentum &lt;SPY&gt;"));
/// assert!(page.contains("<polyline"));
/// # Ok::<(), quantcore::Error>(())
/// ```
///
/// # Errors
/// As [`Metrics::compute`] for the curve: length mismatch, empty curve, non-finite or
/// non-positive equity, timestamps going back.
pub fn html(title: &str, timestamps: &[i64], equity: &[f64], metrics: &Metrics) -> Result<String> {
    check_curve(timestamps, equity)?;
    let title = escape(title);
    let mut out = String::with_capacity(64 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n\
         <h1>{title}</h1>\n<p class=\"subtitle\">{} to {} &middot; {} periods &middot; {} periods per year</p>\n",
        date_time(metrics.start_timestamp),
        date_time(metrics.end_timestamp),
        metrics.n_periods,
        metrics.config.periods_per_year,
    );
    cards(&mut out, metrics);
    out.push_str(
        "<h2>Equity</h2>\n<div class=\"panel\"><div class=\"legend\">\
         <span class=\"swatch line\"></span>equity\
         <span class=\"swatch dash\"></span>starting capital\
         <span class=\"swatch box\"></span>max drawdown, peak to recovery</div>",
    );
    equity_chart(&mut out, timestamps, equity, metrics);
    out.push_str("</div>\n<h2>Drawdown</h2>\n<div class=\"panel\">");
    drawdown_chart(&mut out, timestamps, equity);
    out.push_str("</div>\n<h2>Metrics</h2>\n");
    tables(&mut out, metrics);
    out.push_str(
        "<footer>Returns are simple period returns of the equity curve; ratios follow \
         empyrical's conventions (Sharpe with ddof = 1, Sortino over all periods' downside, \
         drawdown from the running peak including the starting capital). A metric shown as \
         n/a is undefined for this run; the reason is given. Generated by quantcore.</footer>\n\
         </main>\n</body>\n</html>\n",
    );
    Ok(out)
}

/// Writes [`html`] to `path`.
///
/// # Errors
/// As [`html`]; [`Error::Io`] when the file cannot be written.
pub fn write_html(
    path: impl AsRef<Path>,
    title: &str,
    timestamps: &[i64],
    equity: &[f64],
    metrics: &Metrics,
) -> Result<()> {
    let page = html(title, timestamps, equity, metrics)?;
    let path = path.as_ref();
    std::fs::write(path, page).map_err(|e| Error::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

fn cards(out: &mut String, m: &Metrics) {
    let defined = |metric: Metric, format: fn(f64) -> String| match metric {
        Ok(value) => (format(value), ""),
        Err(_) => ("n/a".to_string(), " na"),
    };
    let headline = [
        ("Total return", (percent(m.total_return), "")),
        ("CAGR", defined(m.cagr, percent)),
        ("Sharpe", defined(m.sharpe_ratio, ratio)),
        ("Max drawdown", (percent(m.max_drawdown), "")),
        ("Volatility", defined(m.volatility, percent)),
        ("Win rate", defined(m.trades.win_rate, percent)),
    ];
    out.push_str("<div class=\"cards\">");
    for (label, (value, class)) in headline {
        let _ = write!(
            out,
            "<div class=\"card\"><div class=\"label\">{label}</div><div class=\"value{class}\">{value}</div></div>"
        );
    }
    out.push_str("</div>\n");
}

fn equity_chart(out: &mut String, timestamps: &[i64], equity: &[f64], m: &Metrics) {
    let (low, high) = equity
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &e| {
            (lo.min(e), hi.max(e))
        });
    let (t0, t1) = (timestamps[0], timestamps[timestamps.len() - 1]);
    let frame = Frame::new(EQUITY_HEIGHT, t0, t1, ValueRange::covering(low, high));
    svg::open(out, &frame, "equity curve");
    if let Some(period) = &m.max_drawdown_period {
        let end = period.recovery_timestamp.unwrap_or(t1);
        let (x0, x1) = (frame.x(period.peak_timestamp), frame.x(end));
        let _ = write!(
            out,
            r#"<rect class="episode" x="{x0:.1}" y="{:.1}" width="{:.1}" height="{:.1}"><title>max drawdown {}</title></rect>"#,
            frame.plot_top(),
            (x1 - x0).max(1.0),
            frame.plot_bottom() - frame.plot_top(),
            percent(period.depth),
        );
    }
    svg::y_axis(out, &frame, Axis::Money);
    svg::x_axis(out, &frame);
    let capital = frame.y(equity[0]);
    let _ = write!(
        out,
        r#"<line class="capital" x1="{:.1}" y1="{capital:.1}" x2="{:.1}" y2="{capital:.1}"/>"#,
        frame.plot_left(),
        frame.plot_right(),
    );
    let picked = svg::downsample(&frame, timestamps, equity);
    let _ = write!(
        out,
        r#"<polyline class="equity" points="{}"/>"#,
        svg::points(&frame, timestamps, equity, &picked)
    );
    if let Some(period) = &m.max_drawdown_period {
        for (class, index, text) in [
            ("peak", period.peak_index, "peak"),
            ("trough", period.trough_index, "trough"),
        ] {
            let (x, y) = (frame.x(timestamps[index]), frame.y(equity[index]));
            let _ = write!(
                out,
                r#"<circle class="{class}" cx="{x:.1}" cy="{y:.1}" r="3.5"><title>{text} {}</title></circle>"#,
                date_time(timestamps[index]),
            );
        }
        // The depth label sits under the trough, or above it near the bottom.
        let x = frame.x(timestamps[period.trough_index]);
        let y = frame.y(equity[period.trough_index]);
        let label_y = if y + 18.0 < frame.plot_bottom() {
            y + 16.0
        } else {
            y - 8.0
        };
        let anchor = if x > frame.plot_right() - 90.0 {
            "end"
        } else {
            "middle"
        };
        let _ = write!(
            out,
            r#"<text class="marker" x="{x:.1}" y="{label_y:.1}" text-anchor="{anchor}">max drawdown {}</text>"#,
            percent(period.depth),
        );
    }
    out.push_str("</svg>");
}

fn drawdown_chart(out: &mut String, timestamps: &[i64], equity: &[f64]) {
    let mut peak = f64::NEG_INFINITY;
    let underwater: Vec<f64> = equity
        .iter()
        .map(|&e| {
            peak = peak.max(e);
            e / peak - 1.0
        })
        .collect();
    let deepest = underwater.iter().copied().fold(0.0, f64::min);
    // 4% headroom under the deepest point, so it does not touch the frame; at least
    // -1% when there was no drawdown; the top is 0 exactly.
    let range = ValueRange::covering((deepest * 1.04).min(-0.01), 0.0);
    let (t0, t1) = (timestamps[0], timestamps[timestamps.len() - 1]);
    let frame = Frame::new(DRAWDOWN_HEIGHT, t0, t1, range);
    svg::open(out, &frame, "drawdown");
    svg::y_axis(out, &frame, Axis::Percent);
    svg::x_axis(out, &frame);
    let picked = svg::downsample(&frame, timestamps, &underwater);
    let zero = frame.y(0.0);
    let _ = write!(
        out,
        r#"<polygon class="underwater" points="{:.1},{zero:.1} {} {:.1},{zero:.1}"/>"#,
        frame.x(t0),
        svg::points(&frame, timestamps, &underwater, &picked),
        frame.x(t1),
    );
    out.push_str("</svg>");
}

fn tables(out: &mut String, m: &Metrics) {
    out.push_str("<div class=\"tables\">\n");
    // Two columns: returns and drawdown and parameters left, risk and trades right.
    let sections = sections(m);
    let (left, right): (Vec<_>, Vec<_>) = sections
        .iter()
        .partition(|s| matches!(s.title, "Returns" | "Drawdown" | "Parameters"));
    for column in [left, right] {
        out.push_str("<div>\n");
        for section in column {
            let _ = write!(
                out,
                "<table>\n<tr><th colspan=\"2\">{}</th></tr>\n",
                section.title
            );
            for row in &section.rows {
                match &row.cell {
                    Cell::Value(text) => {
                        let _ = writeln!(
                            out,
                            "<tr><td>{}</td><td class=\"value\">{}</td></tr>",
                            row.label,
                            escape(text)
                        );
                    }
                    Cell::Undefined(reason) => {
                        let _ = writeln!(
                            out,
                            "<tr><td>{}</td><td class=\"na\" title=\"{reason}\">n/a &middot; {reason}</td></tr>",
                            row.label,
                            reason = escape(reason),
                        );
                    }
                }
            }
            out.push_str("</table>\n<div style=\"height:12px\"></div>\n");
        }
        out.push_str("</div>\n");
    }
    out.push_str("</div>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::MetricsConfig;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    const DAY: i64 = 86_400;

    /// A seeded random walk of daily equity starting at 100,000 on 2019-01-02.
    fn random_walk(n: usize, seed: u64) -> (Vec<i64>, Vec<f64>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let start = 1_546_387_200; // 2019-01-02T00:00:00Z
        let timestamps = (0..n as i64).map(|i| start + i * DAY).collect();
        let mut value = 100_000.0;
        let equity = (0..n)
            .map(|i| {
                if i > 0 {
                    value *= 1.0 + rng.gen_range(-0.02..0.0215);
                }
                value
            })
            .collect();
        (timestamps, equity)
    }

    fn page(n: usize) -> (String, Metrics) {
        let (ts, equity) = random_walk(n, 3);
        let pnls = [1_200.0, -800.0, 450.0, -300.0, 2_000.0];
        let m = Metrics::compute(&ts, &equity, &pnls, &MetricsConfig::default()).unwrap();
        (html("Random walk", &ts, &equity, &m).unwrap(), m)
    }

    /// The values of attribute `name` in every `<tag ...>` element of `page`.
    fn attributes<'a>(page: &'a str, tag: &str, name: &str) -> Vec<&'a str> {
        let open = format!("<{tag} ");
        let key = format!(" {name}=\"");
        page.match_indices(&open)
            .filter_map(|(at, _)| {
                let element = &page[at..at + page[at..].find('>').unwrap()];
                let start = element.find(&key)? + key.len();
                Some(&element[start..start + element[start..].find('"').unwrap()])
            })
            .collect()
    }

    #[test]
    fn has_both_charts_and_the_metrics() {
        let (page, m) = page(1_000);
        assert_eq!(page.matches("<svg ").count(), 2);
        assert_eq!(page.matches("<polyline ").count(), 1);
        assert_eq!(page.matches("<polygon class=\"underwater\"").count(), 1);
        for label in [
            "Sharpe ratio",
            "Sortino ratio",
            "Max drawdown",
            "Profit factor",
            "CAGR",
        ] {
            assert!(page.contains(label), "{label}");
        }
        assert!(page.contains(&percent(m.total_return)));
        assert!(page.contains(&ratio(m.sharpe_ratio.unwrap())));
        let period = m.max_drawdown_period.unwrap();
        assert!(page.contains(&date_time(period.trough_timestamp)));
        // date axis labels: 1,000 days from 2019 are labelled by month or year
        assert!(
            page.contains(">2020<") || page.contains(">Jan 2020<"),
            "no date labels"
        );
        assert!(page.ends_with("</html>\n"));
    }

    #[test]
    fn is_self_contained() {
        let (page, _) = page(500);
        let without_namespace = page.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
        assert!(!without_namespace.contains("http"), "a network reference");
        assert!(!page.contains("<script"));
        assert!(!page.contains("<link"));
        assert!(!page.contains("src="));
    }

    #[test]
    fn drawn_points_stay_inside_the_viewbox() {
        let (page, _) = page(2_000);
        let boxes = attributes(&page, "svg", "viewBox");
        let polylines = attributes(&page, "polyline", "points");
        let polygons = attributes(&page, "polygon", "points");
        assert_eq!((boxes.len(), polylines.len(), polygons.len()), (2, 1, 1));
        for (view_box, points) in boxes.iter().zip([polylines[0], polygons[0]]) {
            let size: Vec<f64> = view_box.split(' ').map(|v| v.parse().unwrap()).collect();
            let mut count = 0;
            for pair in points.split(' ') {
                let (x, y) = pair.split_once(',').unwrap();
                let (x, y): (f64, f64) = (x.parse().unwrap(), y.parse().unwrap());
                assert!(
                    (0.0..=size[2]).contains(&x) && (0.0..=size[3]).contains(&y),
                    "{x},{y} outside {view_box}"
                );
                count += 1;
            }
            assert!(count > 100, "too few points: {count}");
        }
    }

    #[test]
    fn a_million_points_give_a_small_page() {
        let (ts, equity) = random_walk(1_000_000, 9);
        // minute bars would be more realistic; daily steps over 2,700 years still
        // exercise the downsampling and the time axis
        let m = Metrics::compute(&ts, &equity, &[], &MetricsConfig::default()).unwrap();
        let page = html("big", &ts, &equity, &m).unwrap();
        assert!(page.len() < 200_000, "{} bytes", page.len());
    }

    #[test]
    fn escapes_the_title() {
        let (ts, equity) = random_walk(10, 1);
        let m = Metrics::compute(&ts, &equity, &[], &MetricsConfig::default()).unwrap();
        let page = html("<script>alert('x')</script> & \"co\"", &ts, &equity, &m).unwrap();
        assert!(!page.contains("<script>"));
        assert!(
            page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;co&quot;")
        );
    }

    #[test]
    fn undefined_metrics_show_their_reason() {
        let ts = [0, DAY, 2 * DAY];
        let equity = [100.0, 100.0, 100.0];
        let m = Metrics::compute(&ts, &equity, &[], &MetricsConfig::default()).unwrap();
        let page = html("flat", &ts, &equity, &m).unwrap();
        assert!(page.contains("n/a &middot; returns have zero variance"));
        assert!(page.contains("n/a &middot; no closed trades"));
    }

    #[test]
    fn tiny_curves_render() {
        for (ts, equity) in [(vec![5], vec![100.0]), (vec![5, 5], vec![100.0, 90.0])] {
            let m = Metrics::compute(&ts, &equity, &[], &MetricsConfig::default()).unwrap();
            let page = html("tiny", &ts, &equity, &m).unwrap();
            assert!(!page.contains("NaN") && !page.contains("inf"), "{page}");
        }
    }

    #[test]
    fn bad_curves_are_rejected() {
        let (ts, equity) = random_walk(10, 1);
        let m = Metrics::compute(&ts, &equity, &[], &MetricsConfig::default()).unwrap();
        let err = html("x", &ts[..9], &equity, &m).unwrap_err();
        assert!(matches!(err, Error::LengthMismatch { .. }));
        let err = write_html("/nonexistent-dir/report.html", "x", &ts, &equity, &m).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
    }

    #[test]
    fn writes_a_sample_report() {
        // Also the page to look at: quantcore-sample-report.html in the system temp
        // directory.
        let (ts, equity) = random_walk(1_250, 2024);
        let pnls = [1_500.0, -700.0, 320.0, -1_100.0, 2_400.0, 80.0, -450.0];
        let m = Metrics::compute(&ts, &equity, &pnls, &MetricsConfig::default()).unwrap();
        let path = std::env::temp_dir().join("quantcore-sample-report.html");
        write_html(&path, "Sample: random-walk equity", &ts, &equity, &m).unwrap();
        let written = std::fs::read_to_string(&path).unwrap();
        assert!(written.contains("Sample: random-walk equity"));
    }
}
