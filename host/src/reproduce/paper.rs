//! The paper's published figures (Shin, Choi, Choi, Sensors 2021), gathered for the
//! report: Table 3 here, Tables 4–7 from the attack modules that compare against them.

use crate::data::Dataset;

pub use crate::attack::adversarial::experiment::PAPER_TABLE_4;
pub use crate::attack::membership::paper::{cell as table_6_7_cell, Cell};
pub use crate::attack::reconstruction::{paper_table5, PaperRow};

/// Table 3, baseline accuracy of the target models: `(train, test)`.
pub fn table3(dataset: Dataset) -> (f64, f64) {
    match dataset {
        Dataset::Mnist => (0.990, 0.971),
        Dataset::Fashion => (0.934, 0.884),
    }
}

/// Table 4, accuracy under attack at ε 0.3: `[none, FGSM, BIM, C&W]`.
pub fn table4(dataset: Dataset) -> Option<[f64; 4]> {
    PAPER_TABLE_4
        .iter()
        .find(|(name, _)| *name == dataset.name())
        .map(|(_, cells)| *cells)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_as_printed() {
        assert_eq!(table3(Dataset::Fashion), (0.934, 0.884));
        assert_eq!(table4(Dataset::Mnist), Some([0.971, 0.081, 0.017, 0.027]));
        assert_eq!(paper_table5(Dataset::Mnist).ssim, 0.998);
    }
}
