//! Image-quality and accuracy metrics shared by every attack: SSIM, PSNR and MSE between
//! two images, and percentile-bootstrap confidence intervals of a mean.
//!
//! # SSIM
//! Wang, Bovik, Sheikh and Simoncelli, "Image quality assessment: from error visibility to
//! structural similarity", IEEE TIP 13(4), 2004, with the settings of that paper, as
//! scikit-image computes them with `structural_similarity(a, b, gaussian_weights=True,
//! sigma=1.5, use_sample_covariance=False, data_range=L)`:
//!
//! * a Gaussian window `w` of 11 x 11 taps, `w(i, j) = g(i) g(j)` with
//!   `g(i) ∝ exp(-i² / (2 · 1.5²))` for `i` in `-5..=5`, normalised to sum 1 (SciPy's
//!   `gaussian_filter` with σ = 1.5 and truncate 3.5);
//! * at each window position, the weighted means `μx`, `μy`, the population (weighted,
//!   not `N / (N − 1)`-corrected) variances `σx² = E[x²] − μx²`, `σy²` and covariance
//!   `σxy = E[xy] − μx μy`;
//! * `SSIM = (2 μx μy + C1)(2 σxy + C2) / ((μx² + μy² + C1)(σx² + σy² + C2))` with
//!   `C1 = (0.01 L)²`, `C2 = (0.03 L)²`, `L` the data range (1 for images in [0, 1]);
//! * the result is the mean over the *valid* window positions only: the window never
//!   leaves the image, which is what scikit-image's crop of `(11 − 1) / 2 = 5` pixels at
//!   each border gives (so the image must be at least 11 x 11).
//!
//! Computed in `f64`. `tests/fixtures/ssim.json` (made by `tests/python/ssim_fixtures.py`
//! with scikit-image) pins the values.
//!
//! # PSNR and MSE
//! `MSE = mean((x − y)²)` over all pixels; `PSNR = 10 log10(L² / MSE)` dB (infinite for
//! identical images), as scikit-image's `peak_signal_noise_ratio`.
//!
//! # Confidence intervals
//! [`bootstrap_mean`]: the mean of per-item values and its 95 % percentile-bootstrap
//! interval: [`BOOTSTRAP_RESAMPLES`] resamples of the items with replacement (ChaCha20
//! from a seed), the 2.5th and 97.5th percentiles of the resample means (linear
//! interpolation between order statistics, NumPy's default).

use rand_core::SeedableRng;

use crate::data::sample::uniform_below;

/// Side of the SSIM window.
pub const SSIM_WINDOW: usize = 11;
/// Standard deviation of the SSIM window's Gaussian, in pixels.
pub const SSIM_SIGMA: f64 = 1.5;
/// SSIM's luminance constant factor: `C1 = (K1 L)²`.
pub const SSIM_K1: f64 = 0.01;
/// SSIM's contrast constant factor: `C2 = (K2 L)²`.
pub const SSIM_K2: f64 = 0.03;
/// Resamples drawn by [`bootstrap_mean`].
pub const BOOTSTRAP_RESAMPLES: usize = 1000;

/// Why a metric cannot be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum MetricError {
    /// The two images, or an image and its stated shape, differ in size.
    #[error("images of {expected} pixels expected, got {found}")]
    LengthMismatch {
        /// Pixels the shape (or the first image) holds.
        expected: usize,
        /// Pixels given.
        found: usize,
    },
    /// The image is smaller than the SSIM window.
    #[error(
        "a {height}x{width} image is smaller than the {SSIM_WINDOW}x{SSIM_WINDOW} SSIM window"
    )]
    TooSmall {
        /// Rows.
        height: usize,
        /// Columns.
        width: usize,
    },
    /// The data range is not a positive finite number.
    #[error("data range {0} is not positive")]
    DataRange(f64),
    /// No pixels or no items.
    #[error("nothing to measure")]
    Empty,
}

/// The normalised 1-D Gaussian of the SSIM window.
fn gaussian_taps() -> [f64; SSIM_WINDOW] {
    let radius = (SSIM_WINDOW / 2) as f64;
    let mut taps = [0.0; SSIM_WINDOW];
    for (i, t) in taps.iter_mut().enumerate() {
        let x = i as f64 - radius;
        *t = (-0.5 * x * x / (SSIM_SIGMA * SSIM_SIGMA)).exp();
    }
    let sum: f64 = taps.iter().sum();
    taps.iter_mut().for_each(|t| *t /= sum);
    taps
}

fn check_pair<A, B>(a: &[A], b: &[B], len: usize) -> Result<(), MetricError> {
    for found in [a.len(), b.len()] {
        if found != len {
            return Err(MetricError::LengthMismatch {
                expected: len,
                found,
            });
        }
    }
    if len == 0 {
        return Err(MetricError::Empty);
    }
    Ok(())
}

fn check_range(data_range: f64) -> Result<(), MetricError> {
    if data_range.is_finite() && data_range > 0.0 {
        Ok(())
    } else {
        Err(MetricError::DataRange(data_range))
    }
}

/// Mean structural similarity of two `height x width` row-major images compared with data
/// range `data_range` (see the module docs for the exact definition). In `[-1, 1]`; 1 for
/// identical images.
///
/// # Errors
/// [`MetricError`] for mismatched lengths, an image smaller than 11 x 11 or a data range
/// that is not positive.
pub fn ssim<P: Copy + Into<f64>>(
    a: &[P],
    b: &[P],
    height: usize,
    width: usize,
    data_range: f64,
) -> Result<f64, MetricError> {
    check_pair(a, b, height.saturating_mul(width))?;
    check_range(data_range)?;
    if height < SSIM_WINDOW || width < SSIM_WINDOW {
        return Err(MetricError::TooSmall { height, width });
    }
    let taps = gaussian_taps();
    let (out_h, out_w) = (height - SSIM_WINDOW + 1, width - SSIM_WINDOW + 1);
    // Horizontal pass: for each row and valid column, the weighted sums of x, y, x², y², xy.
    let mut rows = vec![[0.0f64; 5]; height * out_w];
    for r in 0..height {
        for c in 0..out_w {
            let mut s = [0.0f64; 5];
            for (k, &t) in taps.iter().enumerate() {
                let x: f64 = a[r * width + c + k].into();
                let y: f64 = b[r * width + c + k].into();
                s[0] += t * x;
                s[1] += t * y;
                s[2] += t * x * x;
                s[3] += t * y * y;
                s[4] += t * x * y;
            }
            rows[r * out_w + c] = s;
        }
    }
    let c1 = (SSIM_K1 * data_range).powi(2);
    let c2 = (SSIM_K2 * data_range).powi(2);
    let mut total = 0.0;
    for r in 0..out_h {
        for c in 0..out_w {
            let mut s = [0.0f64; 5];
            for (k, &t) in taps.iter().enumerate() {
                for (acc, &v) in s.iter_mut().zip(&rows[(r + k) * out_w + c]) {
                    *acc += t * v;
                }
            }
            let [mx, my, xx, yy, xy] = s;
            let (vx, vy, vxy) = (xx - mx * mx, yy - my * my, xy - mx * my);
            total += ((2.0 * mx * my + c1) * (2.0 * vxy + c2))
                / ((mx * mx + my * my + c1) * (vx + vy + c2));
        }
    }
    Ok(total / (out_h * out_w) as f64)
}

/// Mean squared error over all pixels.
///
/// # Errors
/// [`MetricError::LengthMismatch`] or [`MetricError::Empty`].
pub fn mse<P: Copy + Into<f64>>(a: &[P], b: &[P]) -> Result<f64, MetricError> {
    check_pair(a, b, a.len())?;
    let sum: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| {
            let d = x.into() - y.into();
            d * d
        })
        .sum();
    Ok(sum / a.len() as f64)
}

/// Peak signal-to-noise ratio in dB, `10 log10(L² / MSE)`; infinite for identical images.
///
/// # Errors
/// As [`mse`], and [`MetricError::DataRange`].
pub fn psnr<P: Copy + Into<f64>>(a: &[P], b: &[P], data_range: f64) -> Result<f64, MetricError> {
    check_range(data_range)?;
    let m = mse(a, b)?;
    Ok(10.0 * (data_range * data_range / m).log10())
}

/// A mean and its 95 % confidence interval.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Estimate {
    /// The mean over the items.
    pub mean: f64,
    /// Lower end of the 95 % interval.
    pub low: f64,
    /// Upper end of the 95 % interval.
    pub high: f64,
}

impl Estimate {
    /// `[low, high]`.
    pub fn interval(&self) -> [f64; 2] {
        [self.low, self.high]
    }

    /// Whether this interval lies entirely above `other`'s.
    pub fn above(&self, other: &Estimate) -> bool {
        self.low > other.high
    }
}

/// The `q`-quantile of sorted values, interpolating linearly between order statistics.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, frac) = (pos.floor() as usize, pos - pos.floor());
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (sorted[hi] - sorted[lo]) * frac
}

/// The mean of `values` with its 95 % percentile-bootstrap interval over
/// [`BOOTSTRAP_RESAMPLES`] resamples drawn from ChaCha20 seeded with `seed`. Non-finite
/// values propagate into the result.
///
/// # Errors
/// [`MetricError::Empty`] for no values.
pub fn bootstrap_mean(values: &[f64], seed: u64) -> Result<Estimate, MetricError> {
    if values.is_empty() {
        return Err(MetricError::Empty);
    }
    let n = values.len();
    let mean = values.iter().sum::<f64>() / n as f64;
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    let mut means: Vec<f64> = (0..BOOTSTRAP_RESAMPLES)
        .map(|_| {
            let sum: f64 = (0..n)
                .map(|_| values[uniform_below(&mut rng, n as u64) as usize])
                .sum();
            sum / n as f64
        })
        .collect();
    means.sort_by(f64::total_cmp);
    Ok(Estimate {
        mean,
        low: quantile(&means, 0.025),
        high: quantile(&means, 0.975),
    })
}

/// [`bootstrap_mean`] of indicators: the fraction of `true`s with its interval.
///
/// # Errors
/// [`MetricError::Empty`] for no items.
pub fn bootstrap_fraction(hits: &[bool], seed: u64) -> Result<Estimate, MetricError> {
    let values: Vec<f64> = hits.iter().map(|&h| f64::from(u8::from(h))).collect();
    bootstrap_mean(&values, seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_images_score_one_and_infinite_psnr() {
        let a: Vec<f32> = (0..28 * 28).map(|i| (i % 17) as f32 / 16.0).collect();
        assert!((ssim(&a, &a, 28, 28, 1.0).unwrap() - 1.0).abs() < 1e-12);
        assert_eq!(mse(&a, &a).unwrap(), 0.0);
        assert_eq!(psnr(&a, &a, 1.0).unwrap(), f64::INFINITY);
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        let a = vec![0.5f32; 100];
        assert_eq!(
            ssim(&a, &a, 10, 10, 1.0),
            Err(MetricError::TooSmall {
                height: 10,
                width: 10
            })
        );
        assert!(matches!(
            ssim(&a, &a[..99], 10, 10, 1.0),
            Err(MetricError::LengthMismatch { .. })
        ));
        assert_eq!(psnr(&a, &a, 0.0), Err(MetricError::DataRange(0.0)));
        assert_eq!(bootstrap_mean(&[], 1), Err(MetricError::Empty));
        assert_eq!(mse::<f32>(&[], &[]), Err(MetricError::Empty));
    }

    #[test]
    fn bootstrap_interval_brackets_the_mean_and_narrows_with_more_items() {
        let small: Vec<f64> = (0..20).map(|i| f64::from(i % 5)).collect();
        let large: Vec<f64> = (0..2000).map(|i| f64::from(i % 5)).collect();
        let (s, l) = (
            bootstrap_mean(&small, 3).unwrap(),
            bootstrap_mean(&large, 3).unwrap(),
        );
        assert!((s.mean - 2.0).abs() < 1e-12 && (l.mean - 2.0).abs() < 1e-12);
        assert!(s.low < 2.0 && s.high > 2.0);
        assert!(l.low < 2.0 && l.high > 2.0);
        // The standard error of the mean is sqrt(2 / n): 0.32 for 20 items, 0.032 for 2000.
        assert!(s.high - s.low > 0.9 && s.high - s.low < 1.6, "{s:?}");
        assert!(l.high - l.low > 0.09 && l.high - l.low < 0.16, "{l:?}");
        assert_eq!(bootstrap_mean(&small, 3).unwrap(), s, "seeded");
        let constant = bootstrap_fraction(&[true; 7], 0).unwrap();
        assert_eq!(
            (constant.mean, constant.low, constant.high),
            (1.0, 1.0, 1.0)
        );
    }
}
