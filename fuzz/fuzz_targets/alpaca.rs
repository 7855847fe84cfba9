//! Alpaca bar parsers (both shapes) on arbitrary bytes: never panic, and a page that
//! parses strictly parses leniently to the same series with nothing dropped.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quantcore::normalize::{ParseOptions, Validation, alpaca};

fuzz_target!(|data: &[u8]| {
    let lenient = ParseOptions::default().validation(Validation::Lenient);
    if let Ok(strict) = alpaca::parse_bars(data, &ParseOptions::default()) {
        let page = alpaca::parse_bars(data, &lenient).expect("strict success implies lenient");
        assert_eq!(page.bars.series, strict.bars.series);
        assert!(page.bars.dropped.is_empty());
    } else {
        let _ = alpaca::parse_bars(data, &lenient);
    }
    if let Ok(strict) = alpaca::parse_multi_bars(data, &ParseOptions::default()) {
        let page = alpaca::parse_multi_bars(data, &lenient).expect("strict success implies lenient");
        assert_eq!(page.into_series(), strict.into_series());
    } else {
        let _ = alpaca::parse_multi_bars(data, &lenient);
    }
});
