//! Shared data builders for the benches.
