//! numpy in and out.
//!
//! **In**: an argument is borrowed as a read-only view of the caller's buffer, never
//! copied: it must already be a numpy array of the right dtype (`float64`, `int64` or
//! `bool`), dimension and C-contiguous layout, otherwise a `TypeError` (dtype, type) or
//! `ValueError` (dimension, layout) says what to pass instead. Objects that are not
//! arrays (lists, pandas Series) go through `numpy.asarray` first, which is free for a
//! float64 Series and a copy for a list; the dtype rule then applies to the result, so
//! no implicit dtype conversion ever copies behind the caller's back.
//!
//! **Out**: a `Vec` computed by the core becomes a numpy array by moving its buffer
//! (`PyArray1::from_vec` wraps the allocation; no element is copied).

use numpy::ndarray::ArrayView2;
use numpy::{
    Element, PyArray1, PyArray2, PyArrayDescrMethods, PyArrayMethods, PyReadonlyArray1,
    PyReadonlyArray2, PyUntypedArray, PyUntypedArrayMethods, dtype,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

/// `numpy.asarray`, imported once.
fn asarray(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static ASARRAY: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    ASARRAY
        .get_or_try_init(py, || {
            Ok::<_, PyErr>(py.import("numpy")?.getattr("asarray")?.unbind())
        })
        .map(|f| f.bind(py))
}

/// The object as a numpy array: itself when it is one, `numpy.asarray(obj)` otherwise.
fn as_ndarray<'py>(obj: &Bound<'py, PyAny>, name: &str) -> PyResult<Bound<'py, PyUntypedArray>> {
    if let Ok(array) = obj.cast::<PyUntypedArray>() {
        return Ok(array.clone());
    }
    let converted = asarray(obj.py())?.call1((obj,)).map_err(|err| {
        PyTypeError::new_err(format!(
            "`{name}` must be a numpy array, was {} ({err})",
            type_name(obj)
        ))
    })?;
    Ok(converted.cast_into::<PyUntypedArray>()?)
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// Checks dtype, dimension and layout of an array argument.
fn check<'py, T: Element>(
    obj: &Bound<'py, PyAny>,
    name: &str,
    ndim: usize,
    dtype_name: &str,
) -> PyResult<Bound<'py, PyUntypedArray>> {
    let py = obj.py();
    let array = as_ndarray(obj, name)?;
    let actual = array.dtype();
    if !actual.is_equiv_to(&dtype::<T>(py)) {
        return Err(PyTypeError::new_err(format!(
            "`{name}` must have dtype {dtype_name}, was {actual}; convert explicitly with \
             numpy.asarray({name}, dtype=numpy.{dtype_name}) (a copy)"
        )));
    }
    if array.ndim() != ndim {
        let shape = array.shape();
        return Err(PyValueError::new_err(format!(
            "`{name}` must be {ndim}-dimensional, was {}-dimensional with shape {shape:?}",
            array.ndim()
        )));
    }
    if !array.is_c_contiguous() {
        return Err(PyValueError::new_err(format!(
            "`{name}` must be C-contiguous (a strided view cannot be borrowed without a \
             copy); pass numpy.ascontiguousarray({name}) (a copy)"
        )));
    }
    Ok(array)
}

/// A 1-D array argument borrowed read-only without a copy.
pub fn readonly1<'py, T: Element>(
    obj: &Bound<'py, PyAny>,
    name: &str,
    dtype_name: &str,
) -> PyResult<PyReadonlyArray1<'py, T>> {
    let array = check::<T>(obj, name, 1, dtype_name)?;
    Ok(array.cast_into::<PyArray1<T>>()?.try_readonly()?)
}

/// A 2-D array argument borrowed read-only without a copy.
pub fn readonly2<'py, T: Element>(
    obj: &Bound<'py, PyAny>,
    name: &str,
    dtype_name: &str,
) -> PyResult<PyReadonlyArray2<'py, T>> {
    let array = check::<T>(obj, name, 2, dtype_name)?;
    Ok(array.cast_into::<PyArray2<T>>()?.try_readonly()?)
}

/// A float64 1-D argument.
pub fn f64_array<'py>(obj: &Bound<'py, PyAny>, name: &str) -> PyResult<PyReadonlyArray1<'py, f64>> {
    readonly1::<f64>(obj, name, "float64")
}

/// An int64 1-D argument.
pub fn i64_array<'py>(obj: &Bound<'py, PyAny>, name: &str) -> PyResult<PyReadonlyArray1<'py, i64>> {
    readonly1::<i64>(obj, name, "int64")
}

/// A bool 1-D argument.
pub fn bool_array<'py>(
    obj: &Bound<'py, PyAny>,
    name: &str,
) -> PyResult<PyReadonlyArray1<'py, bool>> {
    readonly1::<bool>(obj, name, "bool_")
}

/// A float64 2-D argument.
pub fn f64_matrix<'py>(
    obj: &Bound<'py, PyAny>,
    name: &str,
) -> PyResult<PyReadonlyArray2<'py, f64>> {
    readonly2::<f64>(obj, name, "float64")
}

/// The borrowed slice of a checked 1-D array (contiguity was checked).
pub fn slice<'a, T: Element>(array: &'a PyReadonlyArray1<'_, T>) -> &'a [T] {
    array
        .as_slice()
        .expect("checked C-contiguous before borrowing")
}

/// The borrowed view of a checked 2-D array.
pub fn view<'a, T: Element>(array: &'a PyReadonlyArray2<'_, T>) -> ArrayView2<'a, T> {
    array.as_array()
}

/// Moves a `Vec` into a numpy array without copying its elements.
pub fn to_numpy<T: Element>(py: Python<'_>, values: Vec<T>) -> Bound<'_, PyArray1<T>> {
    PyArray1::from_vec(py, values)
}

/// A numpy array that shares the buffer of `values`, read-only, kept alive by `owner`.
///
/// Used for the columns of a bar series: `series.close` is a view of the Rust `Vec`
/// inside the (immutable) Python object, not a copy.
///
/// # Safety
/// `values` must point into memory owned by `owner` that is never mutated or freed
/// while `owner` is alive.
pub unsafe fn borrowed_view<'py, T: Element>(
    owner: Bound<'py, PyAny>,
    values: &[T],
) -> PyResult<Bound<'py, PyArray1<T>>> {
    // SAFETY: the caller guarantees that `values` lives as long as `owner`, which the
    // array holds as its base object; the array is made read-only before it is returned.
    let array =
        unsafe { PyArray1::borrow_from_array(&numpy::ndarray::ArrayView1::from(values), owner) };
    drop(array.try_readwrite()?.make_nonwriteable());
    Ok(array)
}
