//! Reports of a run: a plain-text table, JSON, and a self-contained HTML page.
//!
//! - [`text`]: the metrics as an aligned table, undefined values as `n/a (reason)`;
//! - [`json`]: the [`Metrics`] as pretty JSON (numbers or
//!   `null`, with the reasons of the nulls under `"undefined"`);
//! - [`html`] / [`write_html`]: one HTML file with headline figures, an equity chart
//!   and an underwater (drawdown) chart with date axes, and the metrics table.
//!
//! The HTML page works offline and forever: no scripts, no fonts or styles from the
//! network, charts as inline SVG. Curves are downsampled per pixel column (first,
//! lowest, highest and last point of each column), so spikes survive and a 1M-point
//! curve yields a few thousand vertices. Dates are UTC.
//!
//! Hand-written: an SVG line chart with a date axis is a few hundred lines, and the
//! plotting crates (`plotters`) are not among the core's dependencies.

mod format;
mod html;
mod svg;
mod text;

pub use html::{html, write_html};
pub use text::text;

use crate::error::{Error, Result};
use crate::metrics::Metrics;

/// The metrics as pretty-printed JSON.
///
/// ```
/// use quantcore::metrics::{Metrics, MetricsConfig};
/// let m = Metrics::compute(&[0, 1], &[100.0, 101.0], &[], &MetricsConfig::default())?;
/// let json = quantcore::report::json(&m)?;
/// let value: serde_json::Value = serde_json::from_str(&json).unwrap();
/// assert!(value["sharpe_ratio"].is_null());
/// assert_eq!(value["undefined"]["sharpe_ratio"]["reason"], "too_few_periods");
/// # Ok::<(), quantcore::Error>(())
/// ```
///
/// # Errors
/// [`Error::Serialization`] if serde_json fails, which the metrics' types do not cause
/// (serde_json writes a non-finite number as `null`).
pub fn json(metrics: &Metrics) -> Result<String> {
    serde_json::to_string_pretty(metrics).map_err(|e| Error::Serialization {
        what: "metrics",
        message: e.to_string(),
    })
}
