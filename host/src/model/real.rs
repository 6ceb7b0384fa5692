//! The floating-point types the network runs in: `f32` for training and inference, `f64`
//! for the finite-difference gradient checks, both through one generic code path.

use std::ops::{Add, AddAssign, Div, Mul, Neg, Sub};

/// A real scalar with a matrix product.
pub trait Real:
    Copy
    + Send
    + Sync
    + Default
    + PartialOrd
    + std::fmt::Debug
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + 'static
{
    /// Zero.
    const ZERO: Self;
    /// One.
    const ONE: Self;
    /// Converts from `f64`, rounding to nearest.
    fn from_f64(v: f64) -> Self;
    /// Converts to `f64` exactly.
    fn to_f64(self) -> f64;
    /// `e^self`.
    fn exp(self) -> Self;
    /// `C = beta * C + A * B` for an `m x k` matrix A and a `k x n` matrix B, each given by a
    /// slice and its (row stride, column stride), and an `m x n` C given the same way, whose
    /// strides address every element once (rows side by side or columns side by side).
    ///
    /// # Panics
    /// If a stride or dimension would index outside its slice, or C's strides would make
    /// two of its elements one.
    #[allow(clippy::too_many_arguments)]
    fn gemm(
        m: usize,
        k: usize,
        n: usize,
        a: (&[Self], usize, usize),
        b: (&[Self], usize, usize),
        beta: Self,
        c: (&mut [Self], usize, usize),
    );
}

/// Checks that an `rows x cols` matrix with strides `(rs, cs)` lies inside `len` elements
/// and that the strides fit an `isize`.
fn check_view(what: &str, len: usize, rows: usize, cols: usize, rs: usize, cs: usize) {
    if rows == 0 || cols == 0 {
        return;
    }
    let last = (rows - 1)
        .checked_mul(rs)
        .and_then(|r| (cols - 1).checked_mul(cs).and_then(|c| r.checked_add(c)));
    assert!(
        last.is_some_and(|l| l < len) && isize::try_from(rs).is_ok() && isize::try_from(cs).is_ok(),
        "gemm: {what} view {rows}x{cols} strides ({rs},{cs}) exceeds {len} elements"
    );
}

macro_rules! real_impl {
    ($t:ty, $gemm:path) => {
        impl Real for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            #[allow(clippy::cast_possible_truncation)]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            fn to_f64(self) -> f64 {
                f64::from(self)
            }
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            fn gemm(
                m: usize,
                k: usize,
                n: usize,
                (a, rsa, csa): (&[Self], usize, usize),
                (b, rsb, csb): (&[Self], usize, usize),
                beta: Self,
                (c, rsc, csc): (&mut [Self], usize, usize),
            ) {
                check_view("A", a.len(), m, k, rsa, csa);
                check_view("B", b.len(), k, n, rsb, csb);
                check_view("C", c.len(), m, n, rsc, csc);
                assert!(
                    m <= 1 && n <= 1
                        || (csc > 0 && rsc >= n.saturating_mul(csc))
                        || (rsc > 0 && csc >= m.saturating_mul(rsc)),
                    "gemm: C view {m}x{n} strides ({rsc},{csc}) overlaps itself"
                );
                if m == 0 || n == 0 {
                    return;
                }
                // check_view proved every stride fits an isize.
                let s = |v: usize| isize::try_from(v).unwrap_or(isize::MAX);
                // SAFETY: check_view asserted that every element the product reads from A
                // (m x k with strides rsa, csa) and B (k x n with rsb, csb) and writes to C
                // (m x n with rsc, csc) lies inside its slice; C is borrowed mutably and so does
                // not alias A or B. With k == 0 the kernel only scales C by beta.
                unsafe {
                    $gemm(
                        m,
                        k,
                        n,
                        1.0,
                        a.as_ptr(),
                        s(rsa),
                        s(csa),
                        b.as_ptr(),
                        s(rsb),
                        s(csb),
                        beta,
                        c.as_mut_ptr(),
                        s(rsc),
                        s(csc),
                    );
                }
            }
        }
    };
}

real_impl!(f32, matrixmultiply::sgemm);
real_impl!(f64, matrixmultiply::dgemm);
