//! Risk: pre-trade limits and the exits that protect open positions.
//!
//! This module owns
//! - [`RiskLimits`] (position size as a fraction of equity, order notional cap, open
//!   position cap, short selling, a drawdown kill switch) and [`check_risk_limits`],
//!   which says which limit an order breaks and by how much ([`RiskViolation`]);
//! - stop-loss and take-profit triggers: [`exit_on_bar`] against a bar's open, high
//!   and low (the backtester), and [`stop_loss_manager`] / [`take_profit_manager`]
//!   at current prices (the service's position updater).
//!
//! # Conventions
//! - Notional is `|quantity| * price`; equity is the portfolio's marked equity.
//! - Drawdown is `equity / peak - 1`, a fraction `<= 0`; the kill switch compares it
//!   with `-max_drawdown`.
//! - A limit never blocks an order that only reduces a position; the cash check
//!   applies to every order and uses the same formula as the portfolio's booking, so
//!   cash stays non-negative when every fill passed the check at its fill price.
//! - When a bar reaches both the stop and the target, the stop is assumed first; a bar
//!   that opens through a level exits at the open.

mod exits;
mod limits;

pub use exits::{ExitReason, ExitTrigger, exit_on_bar, stop_loss_manager, take_profit_manager};
pub use limits::{RiskLimits, RiskViolation, check_risk_limits};
