//! Isolation Forest (TODO).
