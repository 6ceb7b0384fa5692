//! The paper's published membership-inference cells (Shin, Choi, Choi, Sensors 2021,
//! Tables 6 and 7): Shokri et al.'s attack with 2, 4 and 8 shadow models against targets
//! trained on all, half and 20 % of the training data, train and test phase.
//!
//! The paper's figures 5 and 6 caption the third target "10%-data"; its tables say 20 %.
//! heist follows the tables.

use crate::data::Dataset;

/// Accuracy, recall and precision of one cell.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Cell {
    /// Accuracy.
    pub accuracy: f64,
    /// Recall.
    pub recall: f64,
    /// Precision.
    pub precision: f64,
}

const fn c(accuracy: f64, recall: f64, precision: f64) -> Cell {
    Cell {
        accuracy,
        recall,
        precision,
    }
}

/// The training fractions of the paper's columns.
pub const FRACTIONS: [f64; 3] = [1.0, 0.5, 0.2];

/// The shadow-model counts of the paper's rows.
pub const SHADOWS: [usize; 3] = [2, 4, 8];

const ONE: Cell = c(1.0, 1.0, 1.0);

/// Table 6 (MNIST): `[shadows row][phase: train, test][fraction column]`.
const MNIST: [[[Cell; 3]; 2]; 3] = [
    [
        [ONE, ONE, ONE],
        [
            c(0.494, 0.498, 0.494),
            c(0.501, 0.395, 0.502),
            c(0.493, 0.695, 0.495),
        ],
    ],
    [
        [
            c(0.843, 0.750, 0.923),
            c(0.843, 0.937, 0.789),
            c(0.812, 0.937, 0.750),
        ],
        [
            c(0.505, 0.257, 0.510),
            c(0.500, 0.731, 0.500),
            c(0.502, 0.823, 0.501),
        ],
    ],
    [
        [
            c(0.609, 0.656, 0.600),
            c(0.710, 0.578, 0.787),
            c(0.609, 0.703, 0.592),
        ],
        [
            c(0.498, 0.620, 0.498),
            c(0.505, 0.388, 0.506),
            c(0.497, 0.704, 0.498),
        ],
    ],
];

/// Table 7 (Fashion-MNIST), same layout.
const FASHION: [[[Cell; 3]; 2]; 3] = [
    [
        [ONE, ONE, ONE],
        [
            c(0.496, 0.621, 0.497),
            c(0.502, 0.732, 0.501),
            c(0.496, 0.573, 0.496),
        ],
    ],
    [
        [
            c(0.687, 0.812, 0.650),
            c(0.562, 0.250, 0.666),
            c(0.625, 0.937, 0.576),
        ],
        [
            c(0.503, 0.653, 0.502),
            c(0.500, 0.227, 0.501),
            c(0.503, 0.750, 0.502),
        ],
    ],
    [
        [
            c(0.609, 0.578, 0.616),
            c(0.617, 0.515, 0.647),
            c(0.570, 0.828, 0.546),
        ],
        [
            c(0.503, 0.570, 0.503),
            c(0.503, 0.524, 0.503),
            c(0.499, 0.860, 0.499),
        ],
    ],
];

/// The paper's cell for `dataset`, `shadows` shadow models, the train (`test == false`) or
/// test phase and a target trained on `fraction` of the data; `None` outside its grid.
pub fn cell(dataset: Dataset, shadows: usize, test: bool, fraction: f64) -> Option<Cell> {
    let row = SHADOWS.iter().position(|&k| k == shadows)?;
    let column = FRACTIONS
        .iter()
        .position(|&f| (f - fraction).abs() < 1e-9)?;
    let table = match dataset {
        Dataset::Mnist => &MNIST,
        Dataset::Fashion => &FASHION,
    };
    Some(table[row][usize::from(test)][column])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_as_printed() {
        assert_eq!(
            cell(Dataset::Mnist, 4, true, 0.2),
            Some(c(0.502, 0.823, 0.501))
        );
        assert_eq!(
            cell(Dataset::Fashion, 8, false, 0.5),
            Some(c(0.617, 0.515, 0.647))
        );
        assert_eq!(cell(Dataset::Mnist, 2, false, 1.0), Some(ONE));
        assert_eq!(cell(Dataset::Mnist, 3, true, 1.0), None);
        assert_eq!(cell(Dataset::Mnist, 2, true, 0.3), None);
    }
}
