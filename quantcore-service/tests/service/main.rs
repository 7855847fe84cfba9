//! The service's integration tests, linked into one test binary.
//!
//! One binary instead of one per file: each binary links the whole service (sqlx, rdkafka,
//! axum, candle), so thirteen of them took minutes of linking and several GB of disk in CI.
//! The tests of different modules now run side by side on the harness's threads; each one
//! makes its own SQLite file, PostgreSQL schema or Kafka mock cluster, so they share nothing.
//!
//! `tests/faults.rs` stays a binary of its own: it restarts the PostgreSQL server, which
//! would break the tests running beside it.

#[path = "../common/mod.rs"]
mod common;
#[path = "../stores/mod.rs"]
mod stores;
#[path = "../support/mod.rs"]
mod support;

mod api;
mod bus_conformance;
mod cli;
mod e2e;
mod metrics;
mod openapi;
mod pipeline;
mod redelivery;
mod sources;
mod stops;
mod store_conformance;
mod train;
