//! Python bindings for quantcore: conversions only, every rule lives in the core crate.

use pyo3::prelude::*;

/// The `quantcore._quantcore` extension module.
#[pymodule]
fn _quantcore(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
