//! PNG figures drawn with the `image` crate: grids of 28×28 images with each image's
//! predicted class written under it in a 3×5 bitmap font (green when it is the true
//! class, red when not).

use image::{Rgb, RgbImage};

use crate::attack::adversarial::experiment::Experiment;
use crate::oracle::{Image, IMAGE_SIDE};

/// Pixels per image pixel.
const ZOOM: u32 = 2;
/// Height of the caption strip under a tile.
const CAPTION: u32 = 9;
/// Gap between tiles.
const GAP: u32 = 2;

/// The digits 0–9 in a 3×5 font: five rows of three bits, most significant bit left.
const DIGITS: [[u8; 5]; 10] = [
    [7, 5, 5, 5, 7],
    [2, 6, 2, 2, 7],
    [7, 1, 7, 4, 7],
    [7, 1, 7, 1, 7],
    [5, 5, 7, 1, 1],
    [7, 4, 7, 1, 7],
    [7, 4, 7, 5, 7],
    [7, 1, 1, 1, 1],
    [7, 5, 7, 5, 7],
    [7, 5, 7, 1, 7],
];

/// A canvas of `rows × cols` tiles.
struct Grid {
    canvas: RgbImage,
}

impl Grid {
    fn new(rows: u32, cols: u32) -> Self {
        let tile = IMAGE_SIDE as u32 * ZOOM;
        Self {
            canvas: RgbImage::from_pixel(
                cols * (tile + GAP) + GAP,
                rows * (tile + CAPTION + GAP) + GAP,
                Rgb([255, 255, 255]),
            ),
        }
    }

    /// Draws `pixels` (values in [0, 1], 0 black) at tile (`row`, `col`) with a caption
    /// digit, if any, coloured by `correct`.
    fn tile(&mut self, row: u32, col: u32, pixels: &[f32], caption: Option<(usize, bool)>) {
        let tile = IMAGE_SIDE as u32 * ZOOM;
        let (x0, y0) = (GAP + col * (tile + GAP), GAP + row * (tile + CAPTION + GAP));
        for (k, &v) in pixels.iter().enumerate() {
            let grey = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
            let (px, py) = ((k % IMAGE_SIDE) as u32, (k / IMAGE_SIDE) as u32);
            for dy in 0..ZOOM {
                for dx in 0..ZOOM {
                    self.canvas
                        .put_pixel(x0 + px * ZOOM + dx, y0 + py * ZOOM + dy, Rgb([grey; 3]));
                }
            }
        }
        if let Some((digit, correct)) = caption {
            let colour = if correct {
                Rgb([0, 140, 0])
            } else {
                Rgb([200, 0, 0])
            };
            let glyph = DIGITS[digit % 10];
            let left = x0 + tile / 2 - 3;
            for (r, bits) in glyph.iter().enumerate() {
                for c in 0..3u32 {
                    if bits >> (2 - c) & 1 == 1 {
                        for d in 0..2 {
                            self.canvas.put_pixel(
                                left + c * 2 + d,
                                y0 + tile + 2 + r as u32,
                                colour,
                            );
                        }
                    }
                }
            }
        }
    }
}

/// Table 4's examples: the first `k` images, one per column. Row 1: the clean images with
/// the oracle's class; then for each attack outcome in order, a row of adversarial images
/// with the oracle's class and a row of perturbations (grey 0.5 = unchanged, lighter =
/// brighter pixel, scaled so that ±0.5 spans the range).
pub fn adversarial_grid(clean: &[Image], result: &Experiment, k: usize) -> RgbImage {
    let k = k.min(clean.len()).max(1);
    let rows = 1 + 2 * result.outcomes.len() as u32;
    let mut grid = Grid::new(rows, k as u32);
    let labels: Vec<usize> = result
        .clean_labels
        .iter()
        .map(|&l| usize::from(l))
        .collect();
    for (col, image) in clean.iter().take(k).enumerate() {
        let caption = result
            .clean_predictions
            .get(col)
            .map(|&p| (p, labels.get(col) == Some(&p)));
        grid.tile(0, col as u32, image.pixels(), caption);
    }
    for (i, outcome) in result.outcomes.iter().enumerate() {
        let row = 1 + 2 * i as u32;
        for (col, (adv, image)) in outcome.adversarial.iter().zip(clean).take(k).enumerate() {
            let caption = outcome
                .predictions
                .get(col)
                .map(|&p| (p, labels.get(col) == Some(&p)));
            grid.tile(row, col as u32, adv.pixels(), caption);
            let diff: Vec<f32> = adv
                .pixels()
                .iter()
                .zip(image.pixels().iter())
                .map(|(a, c)| 0.5 + (a - c))
                .collect();
            grid.tile(row + 1, col as u32, &diff, None);
        }
    }
    grid.canvas
}
