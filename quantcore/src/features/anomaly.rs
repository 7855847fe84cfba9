//! Per-bar feature vectors for anomaly detection (TODO).
