//! The portfolio: one cash pool and a position per registered instrument.

use super::position::Position;
use super::records::{RoundTrip, Snapshot};
use crate::error::{Error, Result};
use crate::execution::Fill;
use crate::order::{
    Instrument, Instruments, Side, SymbolId, check_finite, check_price, quantities_equal,
};

/// Cash after a fill of `quantity` at `price` on `side` with `commission`:
/// `cash - (side * quantity * price + commission)`.
///
/// The one formula shared by [`Portfolio::apply_fill`] and the cash check of
/// [`check_risk_limits`](crate::risk::check_risk_limits), so that a buy the check
/// accepts can never take cash below zero through rounding.
#[inline]
pub(crate) fn cash_after(cash: f64, side: Side, quantity: f64, price: f64, commission: f64) -> f64 {
    cash - (side.sign() * (quantity * price) + commission)
}

/// Cash, positions and closed round trips, valued against an initial capital.
///
/// Positions live in a `Vec` indexed by [`SymbolId`]: marking is a bounds check and a
/// store, and [`equity`](Self::equity) sums `quantity * current_price` over the
/// registered instruments without allocating.
///
/// ```
/// use quantcore::execution::{CommissionModel, ExecutionModel};
/// use quantcore::order::{Instrument, Order, Side};
/// use quantcore::portfolio::Portfolio;
/// let mut portfolio = Portfolio::new(10_000.0)?;
/// let aapl = portfolio.register(Instrument::new("AAPL"))?;
/// let model = ExecutionModel::new(CommissionModel::new(0.001, 0.0)?, 0.0)?;
///
/// let buy = Order::market(1, aapl, Side::Buy, 10.0, 0);
/// portfolio.apply_fill(&model.fill_market(&buy, 100.0, 0)?)?; // cash 10_000 - 1_000 - 1
/// portfolio.mark(aapl, 110.0)?;
/// assert!((portfolio.equity() - 10_099.0).abs() < 1e-9); // 8_999 + 10 * 110
///
/// let sell = Order::market(2, aapl, Side::Sell, 10.0, 60);
/// let trip = portfolio.apply_fill(&model.fill_market(&sell, 110.0, 60)?)?.unwrap();
/// assert!((trip.gross_pnl - 100.0).abs() < 1e-9);
/// assert!((trip.pnl - 97.9).abs() < 1e-9); // less 1.0 + 1.1 commission
/// assert!((portfolio.cash() - 10_097.9).abs() < 1e-9);
/// # Ok::<(), quantcore::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Portfolio {
    initial_capital: f64,
    cash: f64,
    instruments: Instruments,
    positions: Vec<Position>,
    open_positions: usize,
    round_trips: Vec<RoundTrip>,
    total_commission: f64,
    allow_short: bool,
    peak_equity: f64,
    max_drawdown: f64,
}

impl Portfolio {
    /// An empty portfolio holding `initial_capital` in cash, short selling off.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when the capital is not finite and positive.
    pub fn new(initial_capital: f64) -> Result<Self> {
        check_price("initial_capital", initial_capital)?;
        Ok(Portfolio {
            initial_capital,
            cash: initial_capital,
            instruments: Instruments::new(),
            positions: Vec::new(),
            open_positions: 0,
            round_trips: Vec::new(),
            total_commission: 0.0,
            allow_short: false,
            peak_equity: initial_capital,
            max_drawdown: 0.0,
        })
    }

    /// A portfolio over already registered instruments.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn with_instruments(initial_capital: f64, instruments: Instruments) -> Result<Self> {
        let mut portfolio = Portfolio::new(initial_capital)?;
        portfolio.positions = instruments
            .iter()
            .map(|(id, _)| Position::flat(id))
            .collect();
        portfolio.instruments = instruments;
        Ok(portfolio)
    }

    /// Allows or forbids short positions (forbidden by default). When forbidden,
    /// [`apply_fill`](Self::apply_fill) refuses a sell beyond the held quantity.
    pub fn with_short_selling(mut self, allow: bool) -> Self {
        self.allow_short = allow;
        self
    }

    /// True when short positions are allowed.
    pub fn allows_short(&self) -> bool {
        self.allow_short
    }

    /// Registers an instrument with a flat position and returns its id.
    ///
    /// # Errors
    /// [`Error::InvalidSymbol`] for an empty or duplicate symbol.
    pub fn register(&mut self, instrument: Instrument) -> Result<SymbolId> {
        let id = self.instruments.register(instrument)?;
        self.positions.push(Position::flat(id));
        Ok(id)
    }

    /// The registered instruments.
    pub fn instruments(&self) -> &Instruments {
        &self.instruments
    }

    /// The id of a symbol name.
    ///
    /// # Errors
    /// [`Error::UnknownSymbol`] when it is not registered.
    pub fn resolve(&self, symbol: &str) -> Result<SymbolId> {
        self.instruments.resolve(symbol)
    }

    /// The starting capital.
    pub fn initial_capital(&self) -> f64 {
        self.initial_capital
    }

    /// Cash on hand; short sale proceeds included.
    #[inline]
    pub fn cash(&self) -> f64 {
        self.cash
    }

    /// The position in a symbol (flat if never traded), if registered.
    #[inline]
    pub fn position(&self, symbol: SymbolId) -> Option<&Position> {
        self.positions.get(symbol.index())
    }

    /// The position in a symbol given by name.
    ///
    /// # Errors
    /// [`Error::UnknownSymbol`] when the name is not registered.
    pub fn position_of(&self, symbol: &str) -> Result<&Position> {
        let id = self.resolve(symbol)?;
        Ok(&self.positions[id.index()])
    }

    /// Every registered symbol's position, flat ones included, in id order.
    pub fn positions(&self) -> &[Position] {
        &self.positions
    }

    /// The non-flat positions.
    pub fn open_positions(&self) -> impl Iterator<Item = &Position> + '_ {
        self.positions.iter().filter(|p| p.is_open())
    }

    /// Number of non-flat positions, kept up to date by fills (O(1)).
    #[inline]
    pub fn open_position_count(&self) -> usize {
        self.open_positions
    }

    /// Marks a symbol to `price`: the position's `current_price`, hence its market
    /// value and unrealized PnL. O(1), no allocation.
    ///
    /// # Errors
    /// [`Error::UnknownSymbolId`] for an unregistered id; [`Error::InvalidInput`] for
    /// a non-positive or non-finite price (the position is left unchanged).
    #[inline]
    pub fn mark(&mut self, symbol: SymbolId, price: f64) -> Result<()> {
        // Not `ok_or(Error::...)`: that builds and drops an `Error` on every call,
        // and the backtester marks once per bar.
        let Some(position) = self.positions.get_mut(symbol.index()) else {
            return Err(Error::UnknownSymbolId { id: symbol.0 });
        };
        check_price("price", price)?;
        position.current_price = price;
        Ok(())
    }

    /// Marks `SymbolId(index)` at a price already known to be finite and positive, such
    /// as a [`BarSeries`](crate::BarSeries) close (the series checked every price when
    /// it was built): the backtester's once-per-bar mark, without a check or a `Result`.
    #[inline(always)]
    pub(crate) fn mark_valid(&mut self, index: usize, price: f64) {
        debug_assert!(price.is_finite() && price > 0.0, "mark_valid({price})");
        self.positions[index].current_price = price;
    }

    /// Marks every symbol: `prices[i]` is the price of `SymbolId(i)`.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] unless there is one price per registered symbol;
    /// [`Error::InvalidInput`] for a bad price (no position is changed then).
    pub fn mark_all(&mut self, prices: &[f64]) -> Result<()> {
        if prices.len() != self.positions.len() {
            return Err(Error::LengthMismatch {
                field: "prices",
                expected: self.positions.len(),
                actual: prices.len(),
            });
        }
        for &price in prices {
            check_price("price", price)?;
        }
        for (position, &price) in self.positions.iter_mut().zip(prices) {
            position.current_price = price;
        }
        Ok(())
    }

    /// Sum of `quantity * current_price` over the positions; shorts count negative.
    #[inline]
    pub fn positions_value(&self) -> f64 {
        self.positions.iter().map(Position::market_value).sum()
    }

    /// `cash + positions_value()`: what the portfolio is worth at the current marks.
    #[inline]
    pub fn equity(&self) -> f64 {
        self.cash + self.positions_value()
    }

    /// The same as [`equity`](Self::equity), under the name snapshots use.
    #[inline]
    pub fn total_value(&self) -> f64 {
        self.equity()
    }

    /// Sum of the positions' unrealized PnL.
    pub fn unrealized_pnl(&self) -> f64 {
        self.positions.iter().map(Position::unrealized_pnl).sum()
    }

    /// Sum of the positions' realized PnL, before fees.
    pub fn realized_pnl(&self) -> f64 {
        self.positions.iter().map(|p| p.realized_pnl).sum()
    }

    /// Commission paid over the portfolio's life.
    pub fn total_commission(&self) -> f64 {
        self.total_commission
    }

    /// `equity() - initial_capital()`.
    pub fn total_pnl(&self) -> f64 {
        self.equity() - self.initial_capital
    }

    /// `equity() / initial_capital() - 1`, a fraction.
    pub fn total_return(&self) -> f64 {
        self.equity() / self.initial_capital - 1.0
    }

    /// The portfolio's value now, stamped with `timestamp`.
    pub fn snapshot(&self, timestamp: i64) -> Snapshot {
        let positions_value = self.positions_value();
        let total_value = self.cash + positions_value;
        Snapshot {
            timestamp,
            total_value,
            cash: self.cash,
            positions_value,
            total_pnl: total_value - self.initial_capital,
            total_return: total_value / self.initial_capital - 1.0,
        }
    }

    /// Books a fill: the position's quantity, average price and realized PnL, the cash
    /// (`cash -= side * quantity * price + commission`), the commission totals, and a
    /// [`RoundTrip`] when the fill reduces, closes or flips a position (returned, and
    /// kept in [`round_trips`](Self::round_trips)). The symbol is marked at the fill
    /// price; mark it again if the market price differs.
    ///
    /// The fill is booked as given: the cash check belongs to
    /// [`check_risk_limits`](crate::risk::check_risk_limits), before the fill.
    ///
    /// # Errors
    /// Nothing is changed on error.
    /// [`Error::InvalidFill`] for a non-positive or non-finite quantity or price, or a
    /// negative or non-finite commission; [`Error::UnknownSymbolId`]; and
    /// [`Error::ShortNotAllowed`] when short selling is off and the sell exceeds the
    /// held quantity (within [`QUANTITY_TOLERANCE`](crate::order::QUANTITY_TOLERANCE)).
    pub fn apply_fill(&mut self, fill: &Fill) -> Result<Option<RoundTrip>> {
        fill.validate()?;
        let index = fill.symbol.index();
        let Some(position) = self.positions.get(index) else {
            return Err(Error::UnknownSymbolId { id: fill.symbol.0 });
        };
        if !self.allow_short && fill.side == Side::Sell {
            let held = position.quantity;
            if held <= 0.0 || (fill.quantity > held && !quantities_equal(fill.quantity, held)) {
                return Err(Error::ShortNotAllowed {
                    order_id: fill.order_id,
                    symbol: self.symbol_name(fill.symbol),
                    requested: fill.quantity,
                    held: held.max(0.0),
                });
            }
        }
        let position = &mut self.positions[index];
        let was_open = position.is_open();
        let closed = position.apply(fill);
        let is_open = position.is_open();
        self.cash = cash_after(
            self.cash,
            fill.side,
            fill.quantity,
            fill.price,
            fill.commission,
        );
        self.total_commission += fill.commission;
        match (was_open, is_open) {
            (false, true) => self.open_positions += 1,
            (true, false) => self.open_positions -= 1,
            _ => {}
        }
        Ok(closed.map(|part| {
            let trip = RoundTrip::from_closed(fill.symbol, fill.timestamp, part);
            self.round_trips.push(trip);
            trip
        }))
    }

    /// Sets (or clears, with `None`) the stop-loss and take-profit levels of an open
    /// position. A long needs `stop_loss < take_profit`, a short the reverse; levels
    /// are cleared automatically when the position closes or flips.
    ///
    /// # Errors
    /// [`Error::UnknownSymbolId`]; [`Error::NoOpenPosition`] when the symbol is flat;
    /// [`Error::InvalidInput`] for a non-positive or non-finite level, or levels on the
    /// wrong sides of each other.
    pub fn set_exit_levels(
        &mut self,
        symbol: SymbolId,
        stop_loss: Option<f64>,
        take_profit: Option<f64>,
    ) -> Result<()> {
        let position = self
            .positions
            .get(symbol.index())
            .ok_or(Error::UnknownSymbolId { id: symbol.0 })?;
        if !position.is_open() {
            return Err(Error::NoOpenPosition {
                symbol: self.symbol_name(symbol),
            });
        }
        if let Some(stop) = stop_loss {
            check_price("stop_loss", stop)?;
        }
        if let Some(take) = take_profit {
            check_price("take_profit", take)?;
        }
        if let (Some(stop), Some(take)) = (stop_loss, take_profit) {
            let (ordered, reason) = if position.quantity > 0.0 {
                (
                    stop < take,
                    "must be below the take-profit for a long position",
                )
            } else {
                (
                    stop > take,
                    "must be above the take-profit for a short position",
                )
            };
            if !ordered {
                return Err(Error::InvalidInput {
                    field: "stop_loss",
                    value: stop,
                    reason,
                });
            }
        }
        let position = &mut self.positions[symbol.index()];
        position.stop_loss = stop_loss;
        position.take_profit = take_profit;
        Ok(())
    }

    /// Every closed round trip, in the order they closed.
    pub fn round_trips(&self) -> &[RoundTrip] {
        &self.round_trips
    }

    /// The buffer of the closed round trips, for a caller that sizes it ahead (the
    /// backtester, from its run's rate).
    pub(crate) fn round_trips_buffer(&mut self) -> &mut Vec<RoundTrip> {
        &mut self.round_trips
    }

    /// The closed round trips, taking the portfolio apart (no copy).
    pub fn into_round_trips(self) -> Vec<RoundTrip> {
        self.round_trips
    }

    /// The net PnL of each closed round trip: the input of the trade statistics in
    /// [`metrics`](crate::metrics).
    pub fn round_trip_pnls(&self) -> Vec<f64> {
        self.round_trips.iter().map(|t| t.pnl).collect()
    }

    /// Updates the high-water mark and the worst drawdown with the current equity, and
    /// returns the current drawdown `equity / peak - 1` (`<= 0`). Call it once per bar,
    /// after marking every symbol; the drawdown kill switch of
    /// [`RiskLimits`](crate::risk::RiskLimits) reads the worst value seen.
    pub fn update_drawdown(&mut self) -> f64 {
        let equity = self.equity();
        if equity > self.peak_equity {
            self.peak_equity = equity;
        }
        let drawdown = equity / self.peak_equity - 1.0;
        if drawdown < self.max_drawdown {
            self.max_drawdown = drawdown;
        }
        drawdown
    }

    /// The highest equity recorded by [`update_drawdown`](Self::update_drawdown),
    /// starting at the initial capital.
    pub fn peak_equity(&self) -> f64 {
        self.peak_equity
    }

    /// The worst drawdown recorded by [`update_drawdown`](Self::update_drawdown), a
    /// fraction `<= 0`.
    pub fn max_drawdown(&self) -> f64 {
        self.max_drawdown
    }

    /// The drawdown at the current marks, `equity / max(peak, equity) - 1`, without
    /// recording anything.
    pub fn current_drawdown(&self) -> f64 {
        let equity = self.equity();
        equity / self.peak_equity.max(equity) - 1.0
    }

    /// Restores the cash of a stored account (the service reloading its state).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for non-finite cash.
    pub fn restore_cash(&mut self, cash: f64) -> Result<()> {
        check_finite("cash", cash)?;
        self.cash = cash;
        Ok(())
    }

    /// Restores a stored position into its symbol's slot, replacing what was there.
    ///
    /// # Errors
    /// [`Error::UnknownSymbolId`]; [`Error::InvalidInput`] for a non-finite number, an
    /// open position without a positive average and current price, or a short when
    /// short selling is off.
    pub fn restore_position(&mut self, position: Position) -> Result<()> {
        if self.positions.get(position.symbol.index()).is_none() {
            return Err(Error::UnknownSymbolId {
                id: position.symbol.0,
            });
        }
        for (field, value) in [
            ("quantity", position.quantity),
            ("realized_pnl", position.realized_pnl),
            ("commission", position.commission),
            ("entry_commission", position.entry_commission),
        ] {
            check_finite(field, value)?;
        }
        if position.is_open() {
            check_price("average_price", position.average_price)?;
            check_price("current_price", position.current_price)?;
        }
        if position.quantity < 0.0 && !self.allow_short {
            return Err(Error::InvalidInput {
                field: "quantity",
                value: position.quantity,
                reason: "must not be negative when short selling is off",
            });
        }
        let slot = &mut self.positions[position.symbol.index()];
        match (slot.is_open(), position.is_open()) {
            (false, true) => self.open_positions += 1,
            (true, false) => self.open_positions -= 1,
            _ => {}
        }
        *slot = position;
        Ok(())
    }

    fn symbol_name(&self, id: SymbolId) -> String {
        self.instruments
            .symbol(id)
            .map_or_else(|| id.to_string(), str::to_owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::portfolio::PositionSide;

    fn approx(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-9, "{a} != {b}");
    }

    /// A fill at `price` with commission `rate * notional`.
    fn fill(symbol: SymbolId, side: Side, quantity: f64, price: f64, rate: f64, ts: i64) -> Fill {
        Fill {
            order_id: ts as u64,
            symbol,
            side,
            quantity,
            price,
            commission: rate * quantity * price,
            timestamp: ts,
        }
    }

    fn one_symbol(capital: f64, allow_short: bool) -> (Portfolio, SymbolId) {
        let mut p = Portfolio::new(capital)
            .unwrap()
            .with_short_selling(allow_short);
        let x = p.register(Instrument::new("X")).unwrap();
        (p, x)
    }

    #[test]
    fn average_price_partial_close_and_final_close() {
        let (mut p, x) = one_symbol(100_000.0, false);
        // Buy 10 @ 100, 0.1 %: notional 1_000, fee 1.0, cash 98_999.
        assert_eq!(
            p.apply_fill(&fill(x, Side::Buy, 10.0, 100.0, 0.001, 1))
                .unwrap(),
            None
        );
        approx(p.cash(), 98_999.0);
        // Buy 10 @ 110: fee 1.1, cash 97_897.9; avg (1_000 + 1_100) / 20 = 105.
        p.apply_fill(&fill(x, Side::Buy, 10.0, 110.0, 0.001, 2))
            .unwrap();
        let pos = *p.position(x).unwrap();
        assert_eq!(pos.quantity, 20.0);
        approx(pos.average_price, 105.0);
        approx(p.cash(), 97_897.9);
        assert_eq!(pos.opened_at, Some(1));
        // Sell 15 @ 120: fee 1.8, cash 97_897.9 + 1_800 - 1.8 = 99_696.1.
        // Realized 15 * (120 - 105) = 225. Commission of the trip: 15/20 of the
        // 2.1 entry fees = 1.575, plus the 1.8 exit fee = 3.375; pnl 221.625.
        let trip = p
            .apply_fill(&fill(x, Side::Sell, 15.0, 120.0, 0.001, 3))
            .unwrap()
            .unwrap();
        assert_eq!(trip.side, PositionSide::Long);
        assert_eq!(
            (trip.quantity, trip.entry_time, trip.exit_time),
            (15.0, 1, 3)
        );
        approx(trip.entry_price, 105.0);
        approx(trip.exit_price, 120.0);
        approx(trip.gross_pnl, 225.0);
        approx(trip.commission, 3.375);
        approx(trip.pnl, 221.625);
        approx(trip.return_fraction, 221.625 / 1_575.0);
        approx(p.cash(), 99_696.1);
        let pos = *p.position(x).unwrap();
        assert_eq!(pos.quantity, 5.0);
        approx(pos.average_price, 105.0); // unchanged by a reduction
        approx(pos.realized_pnl, 225.0);
        // Mark 130: equity 99_696.1 + 5 * 130 = 100_346.1; unrealized 5 * 25 = 125.
        p.mark(x, 130.0).unwrap();
        approx(p.equity(), 100_346.1);
        approx(p.unrealized_pnl(), 125.0);
        // Sell the last 5 @ 130: fee 0.65; trip gross 125, commission 0.525 + 0.65.
        let trip = p
            .apply_fill(&fill(x, Side::Sell, 5.0, 130.0, 0.001, 4))
            .unwrap()
            .unwrap();
        approx(trip.gross_pnl, 125.0);
        approx(trip.commission, 1.175);
        approx(trip.pnl, 123.825);
        assert_eq!(trip.entry_time, 1);
        let pos = *p.position(x).unwrap();
        assert!(!pos.is_open());
        assert_eq!((pos.average_price, pos.opened_at), (0.0, None));
        // Flat: equity change 100_345.45 - 100_000 = 345.45 = 221.625 + 123.825;
        // gross 350 = 345.45 + 4.55 commission.
        approx(p.equity(), 100_345.45);
        approx(p.round_trip_pnls().iter().sum(), 345.45);
        approx(p.total_commission(), 4.55);
        approx(p.realized_pnl(), 350.0);
        assert_eq!(p.open_position_count(), 0);
    }

    #[test]
    fn short_and_cover() {
        let (mut p, x) = one_symbol(10_000.0, true);
        // Short 10 @ 50: proceeds 500 -> cash 10_500, market value -500.
        p.apply_fill(&fill(x, Side::Sell, 10.0, 50.0, 0.0, 1))
            .unwrap();
        approx(p.cash(), 10_500.0);
        approx(p.equity(), 10_000.0);
        assert_eq!(p.position(x).unwrap().side(), Some(PositionSide::Short));
        // Mark 45: liability 450, equity 10_050, unrealized -10 * (45 - 50) = 50.
        p.mark(x, 45.0).unwrap();
        approx(p.equity(), 10_050.0);
        approx(p.unrealized_pnl(), 50.0);
        // Cover 10 @ 45: cash 10_050, realized 50.
        let trip = p
            .apply_fill(&fill(x, Side::Buy, 10.0, 45.0, 0.0, 2))
            .unwrap()
            .unwrap();
        assert_eq!(trip.side, PositionSide::Short);
        approx(trip.gross_pnl, 50.0);
        approx(trip.return_fraction, 0.1); // 50 / (50 * 10)
        approx(p.cash(), 10_050.0);
        approx(p.equity(), 10_050.0);
    }

    #[test]
    fn flip_through_zero_splits_the_fill() {
        let (mut p, x) = one_symbol(10_000.0, true);
        // Long 10 @ 100 at 1 %: fee 10, cash 8_990.
        p.apply_fill(&fill(x, Side::Buy, 10.0, 100.0, 0.01, 1))
            .unwrap();
        // Sell 15 @ 110: notional 1_650, fee 16.5, cash 8_990 + 1_650 - 16.5 = 10_623.5.
        // Closed 10: gross 100, commission 10 (entry) + 16.5 * 10/15 = 11 -> pnl 79.
        let trip = p
            .apply_fill(&fill(x, Side::Sell, 15.0, 110.0, 0.01, 2))
            .unwrap()
            .unwrap();
        assert_eq!(trip.quantity, 10.0);
        approx(trip.gross_pnl, 100.0);
        approx(trip.commission, 21.0);
        approx(trip.pnl, 79.0);
        approx(p.cash(), 10_623.5);
        // Now short 5 @ 110, opened at the flip, carrying 5.5 of entry commission.
        let pos = *p.position(x).unwrap();
        assert_eq!(pos.quantity, -5.0);
        approx(pos.average_price, 110.0);
        approx(pos.entry_commission, 5.5);
        assert_eq!(pos.opened_at, Some(2));
        // Equity 10_623.5 - 5 * 110 = 10_073.5 = 10_000 + 100 - 26.5.
        approx(p.equity(), 10_073.5);
        // Cover 5 @ 100 (fee 5): gross -5 * (100 - 110) = 50, commission 10.5.
        let trip = p
            .apply_fill(&fill(x, Side::Buy, 5.0, 100.0, 0.01, 3))
            .unwrap()
            .unwrap();
        assert_eq!((trip.side, trip.entry_time), (PositionSide::Short, 2));
        approx(trip.pnl, 39.5);
        approx(p.cash(), 10_118.5);
        approx(p.equity() - 10_000.0, 79.0 + 39.5);
    }

    #[test]
    fn selling_beyond_the_holding_without_short_changes_nothing() {
        let (mut p, x) = one_symbol(10_000.0, false);
        p.apply_fill(&fill(x, Side::Buy, 10.0, 100.0, 0.0, 1))
            .unwrap();
        let before = p.clone();
        assert_eq!(
            p.apply_fill(&fill(x, Side::Sell, 15.0, 100.0, 0.0, 2)),
            Err(Error::ShortNotAllowed {
                order_id: 2,
                symbol: "X".into(),
                requested: 15.0,
                held: 10.0
            })
        );
        assert_eq!(p, before);
        let (mut flat, y) = one_symbol(10_000.0, false);
        assert!(matches!(
            flat.apply_fill(&fill(y, Side::Sell, 1.0, 100.0, 0.0, 1)),
            Err(Error::ShortNotAllowed { held: 0.0, .. })
        ));
    }

    #[test]
    fn bad_fills_and_marks_are_typed_errors() {
        let (mut p, x) = one_symbol(1_000.0, false);
        let mut nan = fill(x, Side::Buy, 1.0, 1.0, 0.0, 1);
        nan.price = f64::NAN;
        assert!(matches!(
            p.apply_fill(&nan),
            Err(Error::InvalidFill { field: "price", .. })
        ));
        let mut unknown = fill(x, Side::Buy, 1.0, 1.0, 0.0, 1);
        unknown.symbol = SymbolId(5);
        assert_eq!(
            p.apply_fill(&unknown),
            Err(Error::UnknownSymbolId { id: 5 })
        );
        assert!(matches!(
            p.mark(x, -1.0),
            Err(Error::InvalidInput {
                field: "price",
                value: -1.0,
                ..
            })
        ));
        assert_eq!(
            p.mark(SymbolId(1), 1.0),
            Err(Error::UnknownSymbolId { id: 1 })
        );
        assert!(matches!(
            p.mark_all(&[1.0, 2.0]),
            Err(Error::LengthMismatch {
                expected: 1,
                actual: 2,
                ..
            })
        ));
        assert!(matches!(
            Portfolio::new(0.0),
            Err(Error::InvalidInput {
                field: "initial_capital",
                ..
            })
        ));
        assert_eq!(p.cash(), 1_000.0);
    }

    #[test]
    fn snapshot_and_drawdown() {
        let (mut p, x) = one_symbol(1_000.0, false);
        p.apply_fill(&fill(x, Side::Buy, 4.0, 100.0, 0.0, 1))
            .unwrap();
        p.mark(x, 150.0).unwrap();
        // Cash 600, positions 600, total 1_200: +20 %.
        let s = p.snapshot(77);
        assert_eq!(s.timestamp, 77);
        approx(s.cash, 600.0);
        approx(s.positions_value, 600.0);
        approx(s.total_value, 1_200.0);
        approx(s.total_pnl, 200.0);
        approx(s.total_return, 0.2);
        approx(p.update_drawdown(), 0.0);
        approx(p.peak_equity(), 1_200.0);
        // Down to 75: equity 900, drawdown 900 / 1_200 - 1 = -25 %.
        p.mark_all(&[75.0]).unwrap();
        approx(p.current_drawdown(), -0.25);
        approx(p.max_drawdown(), 0.0); // not recorded yet
        approx(p.update_drawdown(), -0.25);
        // Back to 120: equity 600 + 480 = 1_080, 1_080 / 1_200 - 1 = -10 %.
        p.mark(x, 120.0).unwrap();
        approx(p.update_drawdown(), -0.1);
        approx(p.max_drawdown(), -0.25);
    }

    #[test]
    fn exit_levels_are_checked_and_cleared_on_close() {
        let (mut p, x) = one_symbol(1_000.0, false);
        assert_eq!(
            p.set_exit_levels(x, Some(90.0), None),
            Err(Error::NoOpenPosition { symbol: "X".into() })
        );
        p.apply_fill(&fill(x, Side::Buy, 1.0, 100.0, 0.0, 1))
            .unwrap();
        assert!(matches!(
            p.set_exit_levels(x, Some(110.0), Some(105.0)),
            Err(Error::InvalidInput {
                field: "stop_loss",
                value: 110.0,
                ..
            })
        ));
        assert!(matches!(
            p.set_exit_levels(x, Some(f64::NAN), None),
            Err(Error::InvalidInput {
                field: "stop_loss",
                ..
            })
        ));
        p.set_exit_levels(x, Some(95.0), Some(110.0)).unwrap();
        assert_eq!(p.position(x).unwrap().stop_loss, Some(95.0));
        p.apply_fill(&fill(x, Side::Sell, 1.0, 96.0, 0.0, 2))
            .unwrap();
        let pos = p.position(x).unwrap();
        assert_eq!((pos.stop_loss, pos.take_profit), (None, None));
    }

    #[test]
    fn fractional_positions_close_exactly() {
        let mut p = Portfolio::new(1_000.0).unwrap();
        let btc = p.register(Instrument::fractional("BTC")).unwrap();
        p.apply_fill(&fill(btc, Side::Buy, 0.1, 100.0, 0.0, 1))
            .unwrap();
        p.apply_fill(&fill(btc, Side::Buy, 0.2, 100.0, 0.0, 2))
            .unwrap();
        // 0.1 + 0.2 = 0.30000000000000004 in floating point; selling 0.3 closes it.
        let trip = p
            .apply_fill(&fill(btc, Side::Sell, 0.3, 110.0, 0.0, 3))
            .unwrap()
            .unwrap();
        assert_eq!(p.position(btc).unwrap().quantity, 0.0);
        assert_eq!(p.open_position_count(), 0);
        approx(trip.gross_pnl, 0.3 * 10.0);
    }

    #[test]
    fn counts_open_positions_and_resolves_names() {
        let mut p = Portfolio::new(10_000.0).unwrap();
        let a = p.register(Instrument::new("A")).unwrap();
        let b = p.register(Instrument::new("B")).unwrap();
        p.apply_fill(&fill(a, Side::Buy, 1.0, 10.0, 0.0, 1))
            .unwrap();
        p.apply_fill(&fill(b, Side::Buy, 1.0, 10.0, 0.0, 2))
            .unwrap();
        assert_eq!(p.open_position_count(), 2);
        assert_eq!(p.open_positions().count(), 2);
        p.apply_fill(&fill(a, Side::Sell, 1.0, 10.0, 0.0, 3))
            .unwrap();
        assert_eq!(p.open_position_count(), 1);
        assert_eq!(p.position_of("B").unwrap().quantity, 1.0);
        assert!(matches!(
            p.position_of("C"),
            Err(Error::UnknownSymbol { .. })
        ));
    }

    #[test]
    fn restore_state() {
        let mut instruments = Instruments::new();
        let x = instruments.register(Instrument::new("X")).unwrap();
        let mut p = Portfolio::with_instruments(10_000.0, instruments).unwrap();
        p.restore_cash(9_000.0).unwrap();
        let mut pos = Position::flat(x);
        pos.quantity = 10.0;
        pos.average_price = 100.0;
        pos.current_price = 105.0;
        p.restore_position(pos).unwrap();
        assert_eq!(p.open_position_count(), 1);
        approx(p.equity(), 10_050.0);
        let mut short = pos;
        short.quantity = -1.0;
        assert!(matches!(
            p.restore_position(short),
            Err(Error::InvalidInput {
                field: "quantity",
                ..
            })
        ));
        let mut unpriced = pos;
        unpriced.current_price = 0.0;
        assert!(matches!(
            p.restore_position(unpriced),
            Err(Error::InvalidInput {
                field: "current_price",
                ..
            })
        ));
        assert!(p.restore_cash(f64::INFINITY).is_err());
    }
}
