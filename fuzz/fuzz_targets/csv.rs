//! CSV readers (one series and by symbol) on arbitrary bytes: never panic, and input
//! that parses strictly parses leniently to the same series with nothing dropped.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quantcore::normalize::{ParseOptions, Validation, csv};

fuzz_target!(|data: &[u8]| {
    let lenient = ParseOptions::default().validation(Validation::Lenient);
    if let Ok(strict) = csv::parse_bars(data, &ParseOptions::default()) {
        let bars = csv::parse_bars(data, &lenient).expect("strict success implies lenient");
        assert_eq!(bars.series, strict.series);
        assert!(bars.dropped.is_empty());
    } else {
        let _ = csv::parse_bars(data, &lenient);
    }
    if let Ok(strict) = csv::parse_bars_by_symbol(data, &ParseOptions::default()) {
        let bars =
            csv::parse_bars_by_symbol(data, &lenient).expect("strict success implies lenient");
        assert_eq!(bars.series, strict.series);
        assert!(bars.dropped.is_empty());
    } else {
        let _ = csv::parse_bars_by_symbol(data, &lenient);
    }
});
