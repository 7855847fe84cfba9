//! Sliding input windows for sequence models (TODO).
