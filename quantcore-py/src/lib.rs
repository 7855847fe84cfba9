//! Python bindings for quantcore: conversions only, every rule lives in the core crate.
//!
//! The extension module `quantcore._quantcore` holds the classes and one submodule per
//! core module (`features`, `metrics`, `normalize`, `report`, `sample`); the Python
//! package `quantcore` (in `python/`) re-exports them with type stubs and adds the
//! pandas and matplotlib helpers.
//!
//! - numpy in without copies, numpy out by moving the core's buffers: [`arrays`];
//! - core errors to Python exceptions in one place: [`errors`];
//! - the GIL is released (`py.detach`) around every call into the core that scans data;
//! - Rust allocations go through mimalloc, as polars does with jemalloc: with glibc's
//!   malloc a 1M-bar backtest spends about half its time faulting in the result's fresh
//!   pages (see the workspace `Cargo.toml`). numpy arrays made from our buffers are
//!   freed by the same allocator, through their owning capsule.

mod arrays;
mod backtest;
mod data;
mod errors;
mod features;
mod iforest;
mod lstm;
mod metrics;
mod money;
mod normalize;

use pyo3::prelude::*;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn submodule<'py>(
    parent: &Bound<'py, PyModule>,
    name: &str,
    register: fn(&Bound<'py, PyModule>) -> PyResult<()>,
) -> PyResult<()> {
    let module = PyModule::new(parent.py(), name)?;
    register(&module)?;
    parent.add_submodule(&module)
}

/// The `quantcore._quantcore` extension module.
#[pymodule]
fn _quantcore(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<data::PyBarSeries>()?;
    m.add_class::<iforest::PyIsolationForest>()?;
    money::register(m)?;
    backtest::register(m)?;
    lstm::register(m)?;
    submodule(m, "features", features::register)?;
    submodule(m, "metrics", metrics::register)?;
    submodule(m, "report", metrics::register_report)?;
    submodule(m, "normalize", normalize::register)?;
    submodule(m, "sample", normalize::sample::register)?;
    Ok(())
}
