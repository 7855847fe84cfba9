//! Order sizing: how many units to trade from equity, price and confidence.

use serde::{Deserialize, Serialize};

use super::instrument::Instrument;
use crate::error::{Error, Result};
use crate::execution::CommissionModel;
use crate::risk::RiskLimits;

/// How an order's quantity is chosen.
///
/// | variant | quantity before caps |
/// |---|---|
/// | `FixedQuantity(q)` | `q` |
/// | `FractionOfEquity(f)` | the most units whose cost *including commission* fits in `f * equity` |
/// | `Confidence { max_fraction }` | as `FractionOfEquity(max_fraction * confidence)` |
///
/// The quantity is then capped so that its notional `quantity * price` stays within
/// [`RiskLimits::max_position_fraction`]` * equity` and
/// [`RiskLimits::max_order_notional`], and rounded down to whole units unless the
/// instrument is fractional. The caps look at this order alone; the existing position
/// is judged by [`check_risk_limits`](crate::risk::check_risk_limits).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Sizing {
    /// A fixed number of units, `> 0`.
    FixedQuantity(f64),
    /// A fraction of equity in `(0, 1]`, commission included.
    FractionOfEquity(f64),
    /// A fraction of equity scaled by the signal's confidence in `[0, 1]`:
    /// `max_fraction * confidence`, with `max_fraction` in `(0, 1]`.
    Confidence { max_fraction: f64 },
}

impl Default for Sizing {
    /// `FractionOfEquity(1.0)`: all in, as backtesting.py's default.
    fn default() -> Self {
        Sizing::FractionOfEquity(1.0)
    }
}

/// The market state a [`Sizing`] reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SizingInput {
    /// Current portfolio equity (cash plus marked positions).
    pub equity: f64,
    /// The expected fill price, `> 0` (include slippage to be exact).
    pub price: f64,
    /// The signal's confidence in `[0, 1]`; read only by [`Sizing::Confidence`].
    pub confidence: f64,
}

impl Sizing {
    /// Checks the parameter.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for a non-positive or non-finite quantity, or a
    /// fraction outside `(0, 1]`.
    pub fn validate(&self) -> Result<()> {
        match *self {
            Sizing::FixedQuantity(q) if !(q.is_finite() && q > 0.0) => Err(
                Error::invalid_parameter("fixed_quantity", q, "must be finite and positive"),
            ),
            Sizing::FractionOfEquity(f) if !(f > 0.0 && f <= 1.0) => Err(Error::invalid_parameter(
                "fraction_of_equity",
                f,
                "must be in (0, 1]",
            )),
            Sizing::Confidence { max_fraction } if !(max_fraction > 0.0 && max_fraction <= 1.0) => {
                Err(Error::invalid_parameter(
                    "max_fraction",
                    max_fraction,
                    "must be in (0, 1]",
                ))
            }
            _ => Ok(()),
        }
    }

    /// The quantity to order; `0.0` means "too little equity for one unit" and the
    /// caller places no order.
    ///
    /// A worked example, all in with 0.1 % commission:
    ///
    /// ```
    /// use quantcore::execution::CommissionModel;
    /// use quantcore::order::{Instrument, Sizing, SizingInput};
    /// use quantcore::risk::RiskLimits;
    /// let commission = CommissionModel::new(0.001, 0.0)?;
    /// let input = SizingInput { equity: 10_000.0, price: 99.0, confidence: 0.5 };
    /// let stock = Instrument::new("AAPL");
    /// // 10_000 / (99 * 1.001) = 100.91... -> 100 whole shares.
    /// let q = Sizing::FractionOfEquity(1.0).quantity(input, &stock, &RiskLimits::default(), &commission)?;
    /// assert_eq!(q, 100.0);
    /// // Confidence 0.5 of at most 40 %: 20 % of equity = 2_000 -> 20 shares.
    /// let q = Sizing::Confidence { max_fraction: 0.4 }
    ///     .quantity(input, &stock, &RiskLimits::default(), &commission)?;
    /// assert_eq!(q, 20.0);
    /// // A cap of 500 per order: 500 / 99 = 5.05 -> 5 shares.
    /// let limits = RiskLimits { max_order_notional: Some(500.0), ..RiskLimits::default() };
    /// assert_eq!(Sizing::FixedQuantity(50.0).quantity(input, &stock, &limits, &commission)?, 5.0);
    /// # Ok::<(), quantcore::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for a bad sizing (see [`validate`](Self::validate));
    /// [`Error::InvalidInput`] for a non-finite equity, a non-positive or non-finite
    /// price, or (for [`Sizing::Confidence`]) a confidence outside `[0, 1]`.
    pub fn quantity(
        &self,
        input: SizingInput,
        instrument: &Instrument,
        limits: &RiskLimits,
        commission: &CommissionModel,
    ) -> Result<f64> {
        self.validate()?;
        check_finite("equity", input.equity)?;
        check_price("price", input.price)?;
        let SizingInput { equity, price, .. } = input;
        let all_in = |budget: f64| (all_in_quantity(budget, price, commission), Some(budget));
        let (quantity, budget) = match *self {
            Sizing::FixedQuantity(q) => (q, None),
            Sizing::FractionOfEquity(f) => all_in(f * equity),
            Sizing::Confidence { max_fraction } => {
                let c = input.confidence;
                if !(0.0..=1.0).contains(&c) {
                    return Err(Error::InvalidInput {
                        field: "confidence",
                        value: c,
                        reason: "must be in [0, 1]",
                    });
                }
                all_in(max_fraction * c * equity)
            }
        };
        let position_cap = limits.max_position_fraction * equity;
        let order_cap = limits.max_order_notional.unwrap_or(f64::INFINITY);
        let quantity = quantity.min(position_cap / price).min(order_cap / price);
        Ok(fit(quantity, instrument, |q| {
            let notional = q * price;
            notional <= position_cap
                && notional <= order_cap
                && budget.is_none_or(|b| notional + commission.commission(notional) <= b)
        }))
    }
}

/// The most units whose cost `quantity * price + commission` fits in `cash`, rounded
/// down to what the instrument trades. A buy of this size passes the cash check of
/// [`check_risk_limits`](crate::risk::check_risk_limits) at `price`.
///
/// ```
/// use quantcore::execution::CommissionModel;
/// use quantcore::order::{max_affordable_quantity, Instrument};
/// // (1_000 - 1 fixed fee) / (10 * 1.001) = 99.8 -> 99 units.
/// let commission = CommissionModel::new(0.001, 1.0)?;
/// assert_eq!(max_affordable_quantity(1_000.0, 10.0, &commission, &Instrument::new("X"))?, 99.0);
/// # Ok::<(), quantcore::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidInput`] for a non-finite cash or a non-positive or non-finite price.
pub fn max_affordable_quantity(
    cash: f64,
    price: f64,
    commission: &CommissionModel,
    instrument: &Instrument,
) -> Result<f64> {
    check_finite("cash", cash)?;
    check_price("price", price)?;
    let quantity = all_in_quantity(cash, price, commission);
    Ok(fit(quantity, instrument, |q| {
        let notional = q * price;
        notional + commission.commission(notional) <= cash
    }))
}

/// `(budget - fixed_fee) / (price * (1 + rate))`, or 0 when the budget does not cover
/// the fixed fee.
fn all_in_quantity(budget: f64, price: f64, commission: &CommissionModel) -> f64 {
    let net = budget - commission.fixed_fee;
    if net > 0.0 {
        net / (price * (1.0 + commission.rate))
    } else {
        0.0
    }
}

/// Rounds down to the instrument's units, then steps down until `fits` holds: the
/// division above can land one ulp over the budget, and a check that recomputes the
/// cost must pass exactly.
fn fit(quantity: f64, instrument: &Instrument, fits: impl Fn(f64) -> bool) -> f64 {
    let mut q = instrument.round_down(quantity.max(0.0));
    for _ in 0..8 {
        if q <= 0.0 || fits(q) {
            return q.max(0.0);
        }
        q = if instrument.fractional {
            q * (1.0 - 1e-12)
        } else {
            q - 1.0
        };
    }
    // Unreachable in practice (each step moves far more than the rounding error);
    // refusing to size is the safe answer.
    0.0
}

pub(crate) fn check_finite(field: &'static str, value: f64) -> Result<()> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(Error::InvalidInput {
            field,
            value,
            reason: "must be finite",
        })
    }
}

pub(crate) fn check_price(field: &'static str, value: f64) -> Result<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidInput {
            field,
            value,
            reason: "must be finite and positive",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(equity: f64, price: f64, confidence: f64) -> SizingInput {
        SizingInput {
            equity,
            price,
            confidence,
        }
    }

    #[test]
    fn fraction_of_equity_includes_commission() {
        // 0.5 * 20_000 = 10_000 budget; fixed fee 5 leaves 9_995;
        // 9_995 / (50 * 1.002) = 199.50... -> 199 units, costing
        // 199 * 50 = 9_950 + 0.002 * 9_950 + 5 = 9_974.9 <= 10_000.
        let commission = CommissionModel::new(0.002, 5.0).unwrap();
        let q = Sizing::FractionOfEquity(0.5)
            .quantity(
                input(20_000.0, 50.0, 0.0),
                &Instrument::new("X"),
                &RiskLimits::default(),
                &commission,
            )
            .unwrap();
        assert_eq!(q, 199.0);
    }

    #[test]
    fn fractional_instruments_keep_fractions_within_budget() {
        // 1_000 / 40_000 = 0.025 BTC, trimmed by a relative 1e-12 at most.
        let q = Sizing::FractionOfEquity(1.0)
            .quantity(
                input(1_000.0, 40_000.0, 0.0),
                &Instrument::fractional("BTC"),
                &RiskLimits::default(),
                &CommissionModel::default(),
            )
            .unwrap();
        assert!((q - 0.025).abs() < 1e-12, "{q}");
        assert!(q * 40_000.0 <= 1_000.0);
    }

    #[test]
    fn confidence_scales_and_position_cap_binds() {
        let limits = RiskLimits {
            max_position_fraction: 0.1,
            ..RiskLimits::default()
        };
        // Confidence 0.9 * 0.5 = 45 % of 10_000 = 4_500 -> 45 units at 100, but the
        // position cap is 10 % of equity = 1_000 -> 10 units.
        let q = Sizing::Confidence { max_fraction: 0.5 }
            .quantity(
                input(10_000.0, 100.0, 0.9),
                &Instrument::new("X"),
                &limits,
                &CommissionModel::default(),
            )
            .unwrap();
        assert_eq!(q, 10.0);
        // Confidence 0 sizes nothing.
        let q = Sizing::Confidence { max_fraction: 0.5 }
            .quantity(
                input(10_000.0, 100.0, 0.0),
                &Instrument::new("X"),
                &RiskLimits::default(),
                &CommissionModel::default(),
            )
            .unwrap();
        assert_eq!(q, 0.0);
    }

    #[test]
    fn too_little_equity_gives_zero_and_negative_equity_too() {
        let x = Instrument::new("X");
        let free = CommissionModel::default();
        let limits = RiskLimits::default();
        let f = Sizing::FractionOfEquity(1.0);
        assert_eq!(
            f.quantity(input(99.0, 100.0, 0.0), &x, &limits, &free)
                .unwrap(),
            0.0
        );
        assert_eq!(
            f.quantity(input(-5.0, 100.0, 0.0), &x, &limits, &free)
                .unwrap(),
            0.0
        );
        // A fixed quantity is capped by the position limit on a negative equity too.
        let fixed = Sizing::FixedQuantity(3.0);
        assert_eq!(
            fixed
                .quantity(input(-5.0, 100.0, 0.0), &x, &limits, &free)
                .unwrap(),
            0.0
        );
        assert_eq!(
            fixed
                .quantity(input(1e6, 100.0, 0.0), &x, &limits, &free)
                .unwrap(),
            3.0
        );
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        let x = Instrument::new("X");
        let free = CommissionModel::default();
        let limits = RiskLimits::default();
        let err = |s: Sizing, i| s.quantity(i, &x, &limits, &free).unwrap_err();
        assert!(matches!(
            err(Sizing::FractionOfEquity(1.0), input(f64::NAN, 1.0, 0.0)),
            Error::InvalidInput {
                field: "equity",
                ..
            }
        ));
        assert!(matches!(
            err(Sizing::FractionOfEquity(1.0), input(1.0, 0.0, 0.0)),
            Error::InvalidInput { field: "price", .. }
        ));
        assert!(matches!(
            err(Sizing::Confidence { max_fraction: 1.0 }, input(1.0, 1.0, 1.5)),
            Error::InvalidInput { field: "confidence", value, .. } if value == 1.5
        ));
        assert!(matches!(
            err(Sizing::FractionOfEquity(1.5), input(1.0, 1.0, 0.0)),
            Error::InvalidParameter {
                name: "fraction_of_equity",
                ..
            }
        ));
        assert!(matches!(
            err(Sizing::FixedQuantity(-1.0), input(1.0, 1.0, 0.0)),
            Error::InvalidParameter {
                name: "fixed_quantity",
                ..
            }
        ));
        assert!(matches!(
            err(
                Sizing::Confidence { max_fraction: 0.0 },
                input(1.0, 1.0, 0.5)
            ),
            Error::InvalidParameter {
                name: "max_fraction",
                ..
            }
        ));
    }

    #[test]
    fn affordable_quantity_passes_the_exact_cost_check() {
        // Awkward numbers: the division may land an ulp high; the result must fit.
        let commission = CommissionModel::new(0.001, 0.0).unwrap();
        let btc = Instrument::fractional("BTC");
        for (cash, price) in [(1_000.0, 3.0), (7_777.77, 0.1), (1e9, 123_456.789)] {
            let q = max_affordable_quantity(cash, price, &commission, &btc).unwrap();
            let notional = q * price;
            assert!(notional + commission.commission(notional) <= cash);
            assert!(q > 0.999_999 * cash / (price * 1.001));
        }
        assert_eq!(
            max_affordable_quantity(0.5, 1.0, &CommissionModel::new(0.0, 1.0).unwrap(), &btc)
                .unwrap(),
            0.0
        );
    }

    #[test]
    fn serde_shape() {
        let s: Sizing = serde_json::from_str(r#"{"confidence":{"max_fraction":0.25}}"#).unwrap();
        assert_eq!(s, Sizing::Confidence { max_fraction: 0.25 });
        let s: Sizing = serde_json::from_str(r#"{"fixed_quantity":10}"#).unwrap();
        assert_eq!(s, Sizing::FixedQuantity(10.0));
    }
}
