//! Yahoo chart parser on arbitrary bytes: never panics, and a response that parses
//! strictly parses leniently to the same series with nothing dropped.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quantcore::normalize::{ParseOptions, Validation, yahoo};

fuzz_target!(|data: &[u8]| {
    let strict = yahoo::parse_chart(data, &ParseOptions::default());
    let lenient_options = ParseOptions::default().validation(Validation::Lenient);
    let lenient = yahoo::parse_chart(data, &lenient_options);
    if let Ok(strict) = strict {
        let lenient = lenient.expect("strict success implies lenient success");
        assert_eq!(lenient.series, strict.series);
        assert!(lenient.dropped.is_empty());
    }
    let _ = yahoo::parse_chart(data, &lenient_options.drop_partial_bar(true).as_of(0));
});
