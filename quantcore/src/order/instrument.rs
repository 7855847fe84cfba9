//! Instruments and their small integer ids.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A small integer naming a registered instrument: its index in [`Instruments`], and
/// the index of its position in a [`Portfolio`](crate::portfolio::Portfolio).
///
/// Orders, fills and positions carry a `SymbolId` rather than a `String`, so the
/// backtester's per-bar work (mark-to-market, exits) indexes a `Vec` and never hashes
/// or allocates. [`Instruments::id`] and [`Instruments::symbol`] convert both ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SymbolId(pub u32);

impl SymbolId {
    /// The id as a `Vec` index.
    #[inline]
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for SymbolId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What the money core needs to know about a tradable instrument.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Instrument {
    /// The ticker, e.g. `"AAPL"`; never empty.
    pub symbol: String,
    /// True when quantities may be fractional (crypto, fractional shares); false means
    /// whole units only, and sizing rounds down to whole units.
    #[serde(default)]
    pub fractional: bool,
}

impl Instrument {
    /// An instrument traded in whole units.
    pub fn new(symbol: impl Into<String>) -> Self {
        Instrument {
            symbol: symbol.into(),
            fractional: false,
        }
    }

    /// An instrument that allows fractional quantities.
    pub fn fractional(symbol: impl Into<String>) -> Self {
        Instrument {
            symbol: symbol.into(),
            fractional: true,
        }
    }

    /// Rounds a non-negative quantity down to what the instrument can trade: whole
    /// units unless [`fractional`](Self::fractional).
    ///
    /// ```
    /// use quantcore::order::Instrument;
    /// assert_eq!(Instrument::new("AAPL").round_down(7.9), 7.0);
    /// assert_eq!(Instrument::fractional("BTC").round_down(0.125), 0.125);
    /// ```
    #[inline]
    pub fn round_down(&self, quantity: f64) -> f64 {
        if self.fractional {
            quantity
        } else {
            quantity.floor()
        }
    }
}

/// The registry of instruments: ids in registration order, and a name -> id map.
///
/// ```
/// use quantcore::order::{Instrument, Instruments, SymbolId};
/// let mut instruments = Instruments::new();
/// let aapl = instruments.register(Instrument::new("AAPL"))?;
/// let btc = instruments.register(Instrument::fractional("BTC-USD"))?;
/// assert_eq!((aapl, btc), (SymbolId(0), SymbolId(1)));
/// assert_eq!(instruments.id("BTC-USD"), Some(btc));
/// assert_eq!(instruments.symbol(aapl), Some("AAPL"));
/// assert!(instruments.register(Instrument::new("AAPL")).is_err()); // duplicate
/// # Ok::<(), quantcore::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Instruments {
    list: Vec<Instrument>,
    by_symbol: HashMap<String, SymbolId>,
}

impl Instruments {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers an instrument and returns its id (the next index).
    ///
    /// # Errors
    /// [`Error::InvalidSymbol`] when the symbol is empty or already registered.
    pub fn register(&mut self, instrument: Instrument) -> Result<SymbolId> {
        if instrument.symbol.trim().is_empty() {
            return Err(Error::InvalidSymbol {
                symbol: instrument.symbol,
                reason: "must not be empty",
            });
        }
        if self.by_symbol.contains_key(&instrument.symbol) {
            return Err(Error::InvalidSymbol {
                symbol: instrument.symbol,
                reason: "is already registered",
            });
        }
        let index = u32::try_from(self.list.len()).map_err(|_| Error::InvalidSymbol {
            symbol: instrument.symbol.clone(),
            reason: "does not fit: more than u32::MAX instruments",
        })?;
        let id = SymbolId(index);
        self.by_symbol.insert(instrument.symbol.clone(), id);
        self.list.push(instrument);
        Ok(id)
    }

    /// The id of a symbol name, if registered.
    pub fn id(&self, symbol: &str) -> Option<SymbolId> {
        self.by_symbol.get(symbol).copied()
    }

    /// The id of a symbol name.
    ///
    /// # Errors
    /// [`Error::UnknownSymbol`] when the name is not registered.
    pub fn resolve(&self, symbol: &str) -> Result<SymbolId> {
        self.id(symbol).ok_or_else(|| Error::UnknownSymbol {
            symbol: symbol.to_owned(),
        })
    }

    /// The instrument behind an id, if registered.
    #[inline]
    pub fn get(&self, id: SymbolId) -> Option<&Instrument> {
        self.list.get(id.index())
    }

    /// The instrument behind an id.
    ///
    /// # Errors
    /// [`Error::UnknownSymbolId`] when the id is not registered.
    #[inline]
    pub fn instrument(&self, id: SymbolId) -> Result<&Instrument> {
        // Not `ok_or(Error::...)`, which builds and drops an `Error` on every call.
        match self.get(id) {
            Some(instrument) => Ok(instrument),
            None => Err(Error::UnknownSymbolId { id: id.0 }),
        }
    }

    /// The symbol name behind an id, if registered.
    pub fn symbol(&self, id: SymbolId) -> Option<&str> {
        self.get(id).map(|instrument| instrument.symbol.as_str())
    }

    /// Number of registered instruments.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// True when nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// `(id, instrument)` in id order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (SymbolId, &Instrument)> + '_ {
        self.list
            .iter()
            .enumerate()
            .map(|(index, instrument)| (SymbolId(index as u32), instrument))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_registration_order_and_resolve_both_ways() {
        let mut instruments = Instruments::new();
        let a = instruments.register(Instrument::new("A")).unwrap();
        let b = instruments.register(Instrument::fractional("B")).unwrap();
        assert_eq!(a, SymbolId(0));
        assert_eq!(b, SymbolId(1));
        assert_eq!(instruments.len(), 2);
        assert_eq!(instruments.resolve("B").unwrap(), b);
        assert!(instruments.get(b).unwrap().fractional);
        assert_eq!(
            instruments.iter().map(|(id, _)| id).collect::<Vec<_>>(),
            vec![a, b]
        );
    }

    #[test]
    fn bad_symbols_are_typed_errors() {
        let mut instruments = Instruments::new();
        instruments.register(Instrument::new("A")).unwrap();
        assert_eq!(
            instruments.register(Instrument::new("A")),
            Err(Error::InvalidSymbol {
                symbol: "A".into(),
                reason: "is already registered"
            })
        );
        assert!(matches!(
            instruments.register(Instrument::new(" ")),
            Err(Error::InvalidSymbol {
                reason: "must not be empty",
                ..
            })
        ));
        assert_eq!(
            instruments.resolve("ZZZ"),
            Err(Error::UnknownSymbol {
                symbol: "ZZZ".into()
            })
        );
        assert_eq!(
            instruments.instrument(SymbolId(9)),
            Err(Error::UnknownSymbolId { id: 9 })
        );
    }

    #[test]
    fn rounding_respects_fractional_flag() {
        assert_eq!(Instrument::new("A").round_down(2.999_999), 2.0);
        assert_eq!(Instrument::fractional("B").round_down(2.5), 2.5);
    }
}
