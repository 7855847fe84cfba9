//! The metrics table shared by the text and HTML reports: sections of labelled,
//! formatted values.

use chrono::DateTime;

use crate::metrics::{Metric, Metrics, Undefined};

/// One formatted value: a number, or why there is none.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    Value(String),
    Undefined(String),
}

/// A labelled row of the metrics table.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) label: &'static str,
    pub(crate) cell: Cell,
}

/// A titled group of rows.
#[derive(Debug, Clone)]
pub(crate) struct Section {
    pub(crate) title: &'static str,
    pub(crate) rows: Vec<Row>,
}

/// `0.1234` -> `12.34%`.
pub(crate) fn percent(value: f64) -> String {
    format!("{:.2}%", value * 100.0)
}

/// A dimensionless ratio with three decimals.
pub(crate) fn ratio(value: f64) -> String {
    format!("{value:.3}")
}

/// Money with thousands separators and two decimals: `-1,234,567.89`.
pub(crate) fn money(value: f64) -> String {
    grouped(value, 2)
}

/// `value` with `decimals` decimals and `,` between thousands.
pub(crate) fn grouped(value: f64, decimals: usize) -> String {
    let text = format!("{:.*}", decimals, value.abs());
    let (integer, fraction) = match text.split_once('.') {
        Some((integer, fraction)) => (integer, Some(fraction)),
        None => (text.as_str(), None),
    };
    let mut out = String::with_capacity(text.len() + integer.len() / 3 + 1);
    if value < 0.0 && text.bytes().any(|b| b.is_ascii_digit() && b != b'0') {
        out.push('-');
    }
    for (i, digit) in integer.chars().enumerate() {
        if i > 0 && (integer.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    if let Some(fraction) = fraction {
        out.push('.');
        out.push_str(fraction);
    }
    out
}

/// A Unix timestamp as `YYYY-MM-DD`, with `HH:MM` when not at midnight UTC.
pub(crate) fn date_time(timestamp: i64) -> String {
    match DateTime::from_timestamp(timestamp, 0) {
        Some(moment) if timestamp.rem_euclid(86_400) == 0 => moment.format("%Y-%m-%d").to_string(),
        Some(moment) => moment.format("%Y-%m-%d %H:%M").to_string(),
        None => timestamp.to_string(),
    }
}

/// Seconds as the largest sensible unit: `3.5 days`, `2.0 hours`, `45 s`.
pub(crate) fn duration(seconds: i64) -> String {
    let s = seconds as f64;
    if seconds.abs() >= 2 * 86_400 {
        format!("{:.1} days", s / 86_400.0)
    } else if seconds.abs() >= 2 * 3_600 {
        format!("{:.1} hours", s / 3_600.0)
    } else if seconds.abs() >= 120 {
        format!("{:.1} min", s / 60.0)
    } else {
        format!("{seconds} s")
    }
}

fn cell(metric: Metric, format: fn(f64) -> String) -> Cell {
    match metric {
        Ok(value) => Cell::Value(format(value)),
        Err(reason) => Cell::Undefined(reason.to_string()),
    }
}

fn value(text: String) -> Cell {
    Cell::Value(text)
}

fn row(label: &'static str, cell: Cell) -> Row {
    Row { label, cell }
}

/// The metrics table: overview, risk, drawdown and trades.
pub(crate) fn sections(m: &Metrics) -> Vec<Section> {
    let t = &m.trades;
    let drawdown_rows = match &m.max_drawdown_period {
        Some(period) => vec![
            row("Max drawdown", value(percent(m.max_drawdown))),
            row("Peak", value(date_time(period.peak_timestamp))),
            row("Trough", value(date_time(period.trough_timestamp))),
            row(
                "Recovery",
                value(match period.recovery_timestamp {
                    Some(ts) => date_time(ts),
                    None => "not recovered".to_string(),
                }),
            ),
            row(
                "Duration",
                value(format!(
                    "{} periods ({})",
                    period.duration_periods,
                    duration(period.duration_seconds)
                )),
            ),
        ],
        None => vec![
            row("Max drawdown", value(percent(m.max_drawdown))),
            row("Peak", Cell::Undefined(Undefined::NoDrawdown.to_string())),
        ],
    };
    vec![
        Section {
            title: "Returns",
            rows: vec![
                row(
                    "Period",
                    value(format!(
                        "{} to {}",
                        date_time(m.start_timestamp),
                        date_time(m.end_timestamp)
                    )),
                ),
                row("Periods", value(m.n_periods.to_string())),
                row("Initial equity", value(money(m.initial_equity))),
                row("Final equity", value(money(m.final_equity))),
                row("Total return", value(percent(m.total_return))),
                row("CAGR", cell(m.cagr, percent)),
                row(
                    "Annualized mean return",
                    cell(m.annualized_mean_return, percent),
                ),
                row("Best period", cell(m.best_period_return, percent)),
                row("Worst period", cell(m.worst_period_return, percent)),
            ],
        },
        Section {
            title: "Risk",
            rows: vec![
                row("Volatility (annualized)", cell(m.volatility, percent)),
                row("Sharpe ratio", cell(m.sharpe_ratio, ratio)),
                row("Sortino ratio", cell(m.sortino_ratio, ratio)),
                row(
                    "Downside deviation (annualized)",
                    cell(m.downside_deviation, percent),
                ),
                row("Calmar ratio", cell(m.calmar_ratio, ratio)),
                row("Skewness", cell(m.skewness, ratio)),
                row("Excess kurtosis", cell(m.excess_kurtosis, ratio)),
                row("Tail ratio", cell(m.tail_ratio, ratio)),
                row("VaR 95% (one period)", cell(m.value_at_risk_95, percent)),
                row(
                    "CVaR 95% (one period)",
                    cell(m.conditional_value_at_risk_95, percent),
                ),
            ],
        },
        Section {
            title: "Drawdown",
            rows: drawdown_rows,
        },
        Section {
            title: "Trades",
            rows: vec![
                row("Closed trades", value(t.n_trades.to_string())),
                row(
                    "Winning / losing",
                    value(format!("{} / {}", t.n_winning, t.n_losing)),
                ),
                row("Win rate", cell(t.win_rate, percent)),
                row("Average win", cell(t.average_win, money)),
                row("Average loss", cell(t.average_loss, money)),
                row("Profit factor", cell(t.profit_factor, ratio)),
                row("Payoff ratio", cell(t.payoff_ratio, ratio)),
                row("Expectancy (per trade)", cell(t.expectancy, money)),
                row("Best trade", cell(t.best_trade, money)),
                row("Worst trade", cell(t.worst_trade, money)),
                row("Total PnL", value(money(t.total_pnl))),
            ],
        },
        Section {
            title: "Parameters",
            rows: vec![
                row(
                    "Periods per year",
                    value(format!("{}", m.config.periods_per_year)),
                ),
                row(
                    "Risk-free rate (per period)",
                    value(format!("{}", m.config.risk_free_rate)),
                ),
                row(
                    "Sortino target (per period)",
                    value(format!("{}", m.config.sortino_target)),
                ),
            ],
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_formatted_for_people() {
        assert_eq!(percent(0.12345), "12.35%");
        assert_eq!(percent(-0.5), "-50.00%");
        assert_eq!(money(1_234_567.891), "1,234,567.89");
        assert_eq!(money(-999.5), "-999.50");
        assert_eq!(money(-0.001), "0.00");
        assert_eq!(grouped(100_000.0, 0), "100,000");
        assert_eq!(ratio(1.23456), "1.235");
        assert_eq!(date_time(1_577_836_800), "2020-01-01");
        assert_eq!(
            date_time(1_577_836_800 + 9 * 3_600 + 30 * 60),
            "2020-01-01 09:30"
        );
        assert_eq!(duration(3 * 86_400), "3.0 days");
        assert_eq!(duration(3 * 3_600), "3.0 hours");
        assert_eq!(duration(30), "30 s");
    }
}
