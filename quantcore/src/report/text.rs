//! The plain-text metrics table.

use std::fmt::Write;

use super::format::{Cell, sections};
use crate::metrics::Metrics;

/// The metrics as an aligned plain-text table, one section per group; an undefined
/// metric reads `n/a (reason)`.
///
/// ```
/// use quantcore::metrics::{Metrics, MetricsConfig};
/// let m = Metrics::compute(&[0, 86_400, 172_800], &[100.0, 110.0, 99.0], &[], &MetricsConfig::default())?;
/// let table = quantcore::report::text(&m);
/// assert!(table.contains("Total return"));
/// assert!(table.contains("-1.00%"));
/// assert!(table.contains("n/a (no closed trades)"));
/// # Ok::<(), quantcore::Error>(())
/// ```
pub fn text(metrics: &Metrics) -> String {
    let sections = sections(metrics);
    let width = sections
        .iter()
        .flat_map(|s| s.rows.iter().map(|r| r.label.len()))
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (k, section) in sections.iter().enumerate() {
        if k > 0 {
            out.push('\n');
        }
        let _ = writeln!(out, "{}", section.title);
        let _ = writeln!(out, "{}", "-".repeat(section.title.len()));
        for row in &section.rows {
            let value = match &row.cell {
                Cell::Value(text) => text.clone(),
                Cell::Undefined(reason) => format!("n/a ({reason})"),
            };
            let _ = writeln!(out, "{:<width$}  {}", row.label, value);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::MetricsConfig;

    #[test]
    fn lists_values_and_reasons_aligned() {
        let day = 86_400;
        let m = Metrics::compute(
            &[0, day, 2 * day],
            &[100.0, 100.0, 100.0],
            &[3.0, -1.0],
            &MetricsConfig::default(),
        )
        .unwrap();
        let table = text(&m);
        assert!(table.contains("Sharpe ratio"));
        assert!(table.contains("n/a (returns have zero variance)"));
        assert!(table.contains("Profit factor"));
        assert!(table.contains("3.000"), "profit factor 3 / 1:\n{table}");
        let win_rate = table.lines().find(|l| l.starts_with("Win rate")).unwrap();
        assert!(win_rate.ends_with(" 50.00%"), "{win_rate}");
        // every value starts in the same column
        let columns: Vec<usize> = table
            .lines()
            .filter(|l| l.contains("  ") && !l.starts_with('-'))
            .map(|l| l.find("  ").unwrap() + l[l.find("  ").unwrap()..].find(|c| c != ' ').unwrap())
            .collect();
        assert!(columns.windows(2).all(|w| w[0] == w[1]), "{table}");
    }
}
