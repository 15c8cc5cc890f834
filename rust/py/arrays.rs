//! All NumPy array creation: owned buffers are moved into NumPy without copying.

use numpy::ndarray::Array2;
use numpy::{Element, IntoPyArray};
use pyo3::prelude::*;

/// Move a vector into a 1-D NumPy array.
pub fn vec1<T: Element>(py: Python<'_>, v: Vec<T>) -> Bound<'_, PyAny> {
    v.into_pyarray(py).into_any()
}

/// Move a row-major buffer into a 2-D NumPy array of shape `(rows, cols)`.
pub fn vec2<T: Element>(py: Python<'_>, v: Vec<T>, rows: usize, cols: usize) -> Bound<'_, PyAny> {
    Array2::from_shape_vec((rows, cols), v)
        .expect("buffer length equals rows * cols")
        .into_pyarray(py)
        .into_any()
}

/// Run `$body` with `$t` bound to the id type of `$width`.
macro_rules! with_id_type {
    ($width:expr, $t:ident => $body:expr) => {
        match $width {
            $crate::kmer::IdWidth::U8 => {
                type $t = u8;
                $body
            }
            $crate::kmer::IdWidth::U16 => {
                type $t = u16;
                $body
            }
            $crate::kmer::IdWidth::U32 => {
                type $t = u32;
                $body
            }
        }
    };
}
pub(crate) use with_id_type;
