//! Property tests of the backtester.
