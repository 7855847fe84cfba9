//! Stop-loss and take-profit triggers.

use serde::{Deserialize, Serialize};

use crate::data::Bar;
use crate::error::{Error, Result};
use crate::order::{Order, Side, SymbolId, check_price};
use crate::portfolio::Position;

/// Which exit level fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitReason {
    StopLoss,
    TakeProfit,
}

/// A position that must close, and the price at which the level was reached.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ExitTrigger {
    pub symbol: SymbolId,
    pub reason: ExitReason,
    /// The side of the closing order (sell for a long, buy for a short).
    pub side: Side,
    /// Units to close: the whole position, `> 0`.
    pub quantity: f64,
    /// The exit price before slippage: the level, or the open when the bar gapped
    /// through it.
    pub price: f64,
}

impl ExitTrigger {
    /// The market order that closes the position. Fill it with
    /// [`ExecutionModel::fill_market`](crate::execution::ExecutionModel::fill_market)
    /// at [`price`](Self::price) as the reference, so slippage applies as to any
    /// market order.
    pub fn to_order(&self, id: u64, created_at: i64) -> Order {
        Order::market(id, self.symbol, self.side, self.quantity, created_at)
    }
}

/// Which levels [`exit_on_bar`] and the managers consider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Levels {
    StopOnly,
    TakeOnly,
    Both,
}

/// Decides whether `position` must close during `bar`, and at what price.
///
/// For a long (a short mirrors, with prices reflected):
/// - the stop fires when `low <= stop_loss`, at `stop_loss`, or at the `open` when the
///   bar opens at or below it (a gap through the stop fills at the open, not at the
///   stop);
/// - the take-profit fires when `high >= take_profit`, at `take_profit`, or at the
///   `open` when the bar opens at or above it;
/// - when both are reached inside one bar, the order of the two is unknown and the
///   stop is assumed first (the conservative choice); a gap through a level at the
///   open is unambiguous and wins.
///
/// Returns `None` for a flat position or one without levels, without looking at the
/// bar. O(1), no allocation: the backtester calls it per symbol per bar.
///
/// ```
/// use quantcore::risk::{exit_on_bar, ExitReason};
/// use quantcore::portfolio::Position;
/// use quantcore::order::SymbolId;
/// use quantcore::Bar;
/// let mut long = Position::flat(SymbolId(0));
/// long.quantity = 10.0;
/// long.average_price = 100.0;
/// long.stop_loss = Some(95.0);
/// long.take_profit = Some(110.0);
/// // The bar reaches both 95 and 110: the stop is taken first.
/// let bar = Bar { timestamp: 0, open: 100.0, high: 111.0, low: 94.0, close: 105.0, volume: 0.0 };
/// let exit = exit_on_bar(&long, &bar)?.unwrap();
/// assert_eq!((exit.reason, exit.price), (ExitReason::StopLoss, 95.0));
/// // It opens at 90, through the stop: the exit is at the open.
/// let gap = Bar { timestamp: 0, open: 90.0, high: 92.0, low: 89.0, close: 91.0, volume: 0.0 };
/// assert_eq!(exit_on_bar(&long, &gap)?.unwrap().price, 90.0);
/// # Ok::<(), quantcore::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidInput`] when the position has levels and the bar's open, high or
/// low is not finite and positive.
#[inline]
pub fn exit_on_bar(position: &Position, bar: &Bar) -> Result<Option<ExitTrigger>> {
    exit_with(position, bar, Levels::Both)
}

fn exit_with(position: &Position, bar: &Bar, levels: Levels) -> Result<Option<ExitTrigger>> {
    let stop = match levels {
        Levels::TakeOnly => None,
        _ => position.stop_loss,
    };
    let take = match levels {
        Levels::StopOnly => None,
        _ => position.take_profit,
    };
    if position.quantity == 0.0 || (stop.is_none() && take.is_none()) {
        return Ok(None);
    }
    check_price("open", bar.open)?;
    check_price("high", bar.high)?;
    check_price("low", bar.low)?;
    let long = position.quantity > 0.0;
    // Reflect a short's prices so that "adverse" is always "down": a short's stop above
    // the price becomes a long's stop below it.
    let (open, adverse_extreme, favorable_extreme) = if long {
        (bar.open, bar.low, bar.high)
    } else {
        (-bar.open, -bar.high, -bar.low)
    };
    let reflect = |level: f64| if long { level } else { -level };
    let stop = stop.map(reflect);
    let take = take.map(reflect);

    let hit = |reason, price: f64| {
        Some(ExitTrigger {
            symbol: position.symbol,
            reason,
            side: if long { Side::Sell } else { Side::Buy },
            quantity: position.quantity.abs(),
            price: reflect(price),
        })
    };
    // Gaps first: the open is the first price of the bar.
    if let Some(stop) = stop
        && open <= stop
    {
        return Ok(hit(ExitReason::StopLoss, open));
    }
    if let Some(take) = take
        && open >= take
    {
        return Ok(hit(ExitReason::TakeProfit, open));
    }
    // Inside the bar the path is unknown: the stop wins a tie.
    if let Some(stop) = stop
        && adverse_extreme <= stop
    {
        return Ok(hit(ExitReason::StopLoss, stop));
    }
    if let Some(take) = take
        && favorable_extreme >= take
    {
        return Ok(hit(ExitReason::TakeProfit, take));
    }
    Ok(None)
}

fn manager<'a>(
    positions: impl IntoIterator<Item = &'a Position>,
    mut price_of: impl FnMut(SymbolId) -> Option<f64>,
    levels: Levels,
) -> Result<Vec<ExitTrigger>> {
    let mut exits = Vec::new();
    for position in positions {
        let Some(price) = price_of(position.symbol) else {
            continue;
        };
        let point = Bar {
            timestamp: 0,
            open: price,
            high: price,
            low: price,
            close: price,
            volume: 0.0,
        };
        let result = exit_with(position, &point, levels).map_err(|error| match error {
            Error::InvalidInput { value, reason, .. } => Error::InvalidInput {
                field: "price",
                value,
                reason,
            },
            other => other,
        });
        if let Some(exit) = result? {
            exits.push(exit);
        }
    }
    Ok(exits)
}

/// The positions whose stop-loss is reached at the current prices, each to close at
/// its current price (the price has already moved through the stop).
///
/// `price_of` gives each symbol's current price; positions whose symbol has no price
/// (`None`) are skipped. For the service's periodic position updater; a backtest
/// checks bars with [`exit_on_bar`].
///
/// ```
/// use quantcore::order::{Instrument, Side};
/// use quantcore::portfolio::Portfolio;
/// use quantcore::execution::Fill;
/// use quantcore::risk::{stop_loss_manager, take_profit_manager};
/// let mut portfolio = Portfolio::new(10_000.0)?;
/// let x = portfolio.register(Instrument::new("X"))?;
/// let fill = Fill { order_id: 1, symbol: x, side: Side::Buy, quantity: 5.0, price: 100.0, commission: 0.0, timestamp: 0 };
/// portfolio.apply_fill(&fill)?;
/// portfolio.set_exit_levels(x, Some(95.0), Some(120.0))?;
/// let exits = stop_loss_manager(portfolio.positions(), |_| Some(94.5))?;
/// assert_eq!((exits[0].side, exits[0].quantity, exits[0].price), (Side::Sell, 5.0, 94.5));
/// assert!(take_profit_manager(portfolio.positions(), |_| Some(94.5))?.is_empty());
/// # Ok::<(), quantcore::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidInput`] (field `price`) when a price is not finite and positive.
pub fn stop_loss_manager<'a>(
    positions: impl IntoIterator<Item = &'a Position>,
    price_of: impl FnMut(SymbolId) -> Option<f64>,
) -> Result<Vec<ExitTrigger>> {
    manager(positions, price_of, Levels::StopOnly)
}

/// The positions whose take-profit is reached at the current prices; see
/// [`stop_loss_manager`].
///
/// # Errors
/// [`Error::InvalidInput`] (field `price`) when a price is not finite and positive.
pub fn take_profit_manager<'a>(
    positions: impl IntoIterator<Item = &'a Position>,
    price_of: impl FnMut(SymbolId) -> Option<f64>,
) -> Result<Vec<ExitTrigger>> {
    manager(positions, price_of, Levels::TakeOnly)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position(quantity: f64, stop: Option<f64>, take: Option<f64>) -> Position {
        let mut p = Position::flat(SymbolId(3));
        p.quantity = quantity;
        p.average_price = 100.0;
        p.current_price = 100.0;
        p.stop_loss = stop;
        p.take_profit = take;
        p
    }

    fn bar(open: f64, high: f64, low: f64, close: f64) -> Bar {
        Bar {
            timestamp: 0,
            open,
            high,
            low,
            close,
            volume: 0.0,
        }
    }

    fn exit(p: &Position, b: Bar) -> Option<(ExitReason, f64)> {
        exit_on_bar(p, &b).unwrap().map(|e| (e.reason, e.price))
    }

    #[test]
    fn long_stop_hit_intrabar_fills_at_the_stop() {
        let long = position(10.0, Some(95.0), None);
        assert_eq!(
            exit(&long, bar(99.0, 100.0, 94.0, 96.0)),
            Some((ExitReason::StopLoss, 95.0))
        );
        // Touching exactly counts.
        assert_eq!(
            exit(&long, bar(99.0, 100.0, 95.0, 96.0)),
            Some((ExitReason::StopLoss, 95.0))
        );
        assert_eq!(exit(&long, bar(99.0, 100.0, 95.01, 96.0)), None);
        let trigger = exit_on_bar(&long, &bar(99.0, 100.0, 94.0, 96.0))
            .unwrap()
            .unwrap();
        assert_eq!(
            (trigger.side, trigger.quantity, trigger.symbol),
            (Side::Sell, 10.0, SymbolId(3))
        );
    }

    #[test]
    fn gap_through_the_stop_fills_at_the_open() {
        let long = position(10.0, Some(95.0), Some(110.0));
        assert_eq!(
            exit(&long, bar(90.0, 97.0, 88.0, 96.0)),
            Some((ExitReason::StopLoss, 90.0))
        );
        let short = position(-10.0, Some(105.0), Some(90.0));
        // A short's stop is above; the bar opens at 108.
        assert_eq!(
            exit(&short, bar(108.0, 109.0, 104.0, 105.0)),
            Some((ExitReason::StopLoss, 108.0))
        );
    }

    #[test]
    fn stop_first_when_both_levels_are_inside_one_bar() {
        let long = position(10.0, Some(95.0), Some(110.0));
        assert_eq!(
            exit(&long, bar(100.0, 112.0, 94.0, 100.0)),
            Some((ExitReason::StopLoss, 95.0))
        );
        let short = position(-10.0, Some(105.0), Some(90.0));
        assert_eq!(
            exit(&short, bar(100.0, 106.0, 89.0, 100.0)),
            Some((ExitReason::StopLoss, 105.0))
        );
    }

    #[test]
    fn take_profit_at_the_level_or_better_on_a_gap() {
        let long = position(10.0, Some(95.0), Some(110.0));
        assert_eq!(
            exit(&long, bar(105.0, 111.0, 104.0, 109.0)),
            Some((ExitReason::TakeProfit, 110.0))
        );
        // A gap up over the target: the open is first, so the take-profit wins even
        // though the bar later falls through the stop.
        assert_eq!(
            exit(&long, bar(115.0, 116.0, 94.0, 100.0)),
            Some((ExitReason::TakeProfit, 115.0))
        );
        let short = position(-4.0, None, Some(90.0));
        let trigger = exit_on_bar(&short, &bar(92.0, 93.0, 89.5, 91.0))
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                trigger.reason,
                trigger.price,
                trigger.side,
                trigger.quantity
            ),
            (ExitReason::TakeProfit, 90.0, Side::Buy, 4.0)
        );
        assert_eq!(
            exit(&short, bar(88.0, 89.0, 87.0, 88.0)),
            Some((ExitReason::TakeProfit, 88.0))
        );
    }

    #[test]
    fn nothing_fires_without_levels_or_position() {
        let quiet = bar(100.0, 101.0, 99.0, 100.0);
        assert_eq!(exit(&position(10.0, Some(95.0), Some(110.0)), quiet), None);
        assert_eq!(
            exit(&position(10.0, None, None), bar(1.0, 1.0, 1.0, 1.0)),
            None
        );
        assert_eq!(
            exit(&position(0.0, Some(95.0), None), bar(1.0, 1.0, 1.0, 1.0)),
            None
        );
    }

    #[test]
    fn nan_bar_is_an_error_when_levels_are_set() {
        let long = position(10.0, Some(95.0), None);
        assert!(matches!(
            exit_on_bar(&long, &bar(f64::NAN, 100.0, 90.0, 95.0)),
            Err(Error::InvalidInput { field: "open", .. })
        ));
    }

    #[test]
    fn managers_pick_their_level_and_skip_unpriced_symbols() {
        let mut a = position(10.0, Some(95.0), Some(110.0));
        a.symbol = SymbolId(0);
        let mut b = position(-5.0, Some(105.0), Some(90.0));
        b.symbol = SymbolId(1);
        let mut c = position(3.0, Some(50.0), None);
        c.symbol = SymbolId(2);
        let prices = [94.0, 89.0, 40.0];
        let all = [a, b, c];
        let stops = stop_loss_manager(&all, |id| Some(prices[id.index()])).unwrap();
        // a: 94 <= 95 stop; b: 89 is below a short's stop; c: 40 <= 50 stop.
        assert_eq!(stops.len(), 2);
        assert_eq!((stops[0].symbol, stops[0].price), (SymbolId(0), 94.0));
        assert_eq!((stops[1].symbol, stops[1].price), (SymbolId(2), 40.0));
        let takes = take_profit_manager(&all, |id| Some(prices[id.index()])).unwrap();
        assert_eq!(takes.len(), 1);
        assert_eq!(
            (takes[0].symbol, takes[0].side, takes[0].price),
            (SymbolId(1), Side::Buy, 89.0)
        );
        // No price for symbol 0: skipped.
        let stops = stop_loss_manager(&all, |id| (id.0 != 0).then(|| prices[id.index()])).unwrap();
        assert_eq!(stops.len(), 1);
        assert!(matches!(
            stop_loss_manager(&all, |_| Some(f64::NAN)),
            Err(Error::InvalidInput { field: "price", .. })
        ));
        let order = stops[0].to_order(9, 60);
        assert_eq!(
            (order.id, order.side, order.quantity, order.created_at),
            (9, Side::Sell, 3.0, 60)
        );
    }
}
