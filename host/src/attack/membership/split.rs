//! Who is a member: the records every attack is scored on, and the insider's own records.
//!
//! * **Members**: training-set indices drawn uniformly from the records that every target
//!   trained on (targets trained with one seed on fractions of the training set hold nested
//!   member sets, so this is the smallest target's member set).
//! * **Non-members**: test-set indices drawn uniformly; no target trained on the test set.
//! * **Insider records**: every other test-set record. The semi-honest party holds data
//!   like the training data but not the records under question; its shadow models train on
//!   these (and, for LiRA, also on the challenge records, each IN for half of the models).
//!
//! Members and non-members are balanced, so a coin flip scores 0.5 accuracy. The test set
//! is covered exactly once by non-members and insider records ([`Split::check`]).

use rand_core::SeedableRng;

use crate::data::{sample, Images};

/// Sizes and seed of a [`Split`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SplitConfig {
    /// Members (and as many non-members) to score.
    pub per_side: usize,
    /// Seed of the draws.
    pub seed: u64,
}

/// Why a split cannot be drawn or is inconsistent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SplitError {
    /// Fewer records are available than asked for.
    #[error("{wanted} {what} asked for, only {available} available")]
    NotEnough {
        /// What was short.
        what: &'static str,
        /// Asked for.
        wanted: usize,
        /// Available.
        available: usize,
    },
    /// No record on one side.
    #[error("a split needs at least one member and one non-member")]
    Empty,
    /// An index is out of range.
    #[error("{what} index {index} is not below {len}")]
    OutOfRange {
        /// Which list.
        what: &'static str,
        /// The index.
        index: usize,
        /// The set's size.
        len: usize,
    },
    /// An index appears twice, or a member is not a member of some target.
    #[error("{what}: index {index} {problem}")]
    Inconsistent {
        /// Which list.
        what: &'static str,
        /// The index.
        index: usize,
        /// What is wrong.
        problem: &'static str,
    },
    /// Members and non-members differ in number.
    #[error("{members} members but {non_members} non-members")]
    Unbalanced {
        /// Members.
        members: usize,
        /// Non-members.
        non_members: usize,
    },
}

/// The records under question and the insider's records, by index.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Split {
    /// Training-set indices, increasing: members of every target.
    pub members: Vec<usize>,
    /// Test-set indices, increasing: members of no target.
    pub non_members: Vec<usize>,
    /// Test-set indices, increasing: the rest of the test set.
    pub insider: Vec<usize>,
    /// Size of the training set.
    pub train_len: usize,
    /// Size of the test set.
    pub test_len: usize,
}

fn chacha(seed: u64, stream: u64) -> rand_chacha::ChaCha20Rng {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// The sorted indices present in every list (each list sorted and without repeats).
fn intersection(lists: &[&[usize]]) -> Vec<usize> {
    let Some((first, rest)) = lists.split_first() else {
        return Vec::new();
    };
    first
        .iter()
        .copied()
        .filter(|i| rest.iter().all(|l| l.binary_search(i).is_ok()))
        .collect()
}

impl Split {
    /// Draws `config.per_side` members from the records every list of `targets` holds
    /// (training-set indices) and as many non-members from the test set; the rest of the
    /// test set goes to the insider.
    ///
    /// # Errors
    /// [`SplitError::Empty`] for a zero size, [`SplitError::NotEnough`] when the common
    /// members or the test set are too few (the test set must also leave the insider at
    /// least one record), and any error of [`Split::check`].
    pub fn draw(
        targets: &[&[usize]],
        train_len: usize,
        test_len: usize,
        config: SplitConfig,
    ) -> Result<Split, SplitError> {
        if config.per_side == 0 || targets.is_empty() {
            return Err(SplitError::Empty);
        }
        let mut sorted: Vec<Vec<usize>> = targets.iter().map(|t| t.to_vec()).collect();
        for t in &mut sorted {
            t.sort_unstable();
            t.dedup();
        }
        let views: Vec<&[usize]> = sorted.iter().map(Vec::as_slice).collect();
        let common = intersection(&views);
        if common.len() < config.per_side {
            return Err(SplitError::NotEnough {
                what: "members common to every target",
                wanted: config.per_side,
                available: common.len(),
            });
        }
        if test_len <= config.per_side {
            return Err(SplitError::NotEnough {
                what: "test records (non-members plus at least one insider record)",
                wanted: config.per_side + 1,
                available: test_len,
            });
        }
        let picked =
            sample::sample_indices(&mut chacha(config.seed, 0), common.len(), config.per_side);
        let members: Vec<usize> = picked.iter().map(|&i| common[i]).collect();
        let non_members =
            sample::sample_indices(&mut chacha(config.seed, 1), test_len, config.per_side);
        let insider = (0..test_len)
            .filter(|i| non_members.binary_search(i).is_err())
            .collect();
        let split = Split {
            members,
            non_members,
            insider,
            train_len,
            test_len,
        };
        split.check(targets)?;
        Ok(split)
    }

    /// Checks what the split claims: members are distinct training-set indices held by
    /// every target; non-members are as many distinct test-set indices; non-members and
    /// insider records cover the test set exactly once.
    ///
    /// # Errors
    /// The first violation found.
    pub fn check(&self, targets: &[&[usize]]) -> Result<(), SplitError> {
        if self.members.len() != self.non_members.len() {
            return Err(SplitError::Unbalanced {
                members: self.members.len(),
                non_members: self.non_members.len(),
            });
        }
        let sorted: Vec<Vec<usize>> = targets
            .iter()
            .map(|t| {
                let mut t = t.to_vec();
                t.sort_unstable();
                t
            })
            .collect();
        let mut seen = vec![false; self.train_len];
        for &index in &self.members {
            let slot = seen.get_mut(index).ok_or(SplitError::OutOfRange {
                what: "member",
                index,
                len: self.train_len,
            })?;
            if std::mem::replace(slot, true) {
                return Err(SplitError::Inconsistent {
                    what: "member",
                    index,
                    problem: "appears twice",
                });
            }
            if !sorted.iter().all(|t| t.binary_search(&index).is_ok()) {
                return Err(SplitError::Inconsistent {
                    what: "member",
                    index,
                    problem: "is not a member of every target",
                });
            }
        }
        let mut covered = vec![0u8; self.test_len];
        for (what, list) in [
            ("non-member", &self.non_members),
            ("insider", &self.insider),
        ] {
            for &index in list {
                let slot = covered.get_mut(index).ok_or(SplitError::OutOfRange {
                    what,
                    index,
                    len: self.test_len,
                })?;
                *slot = slot.saturating_add(1);
            }
        }
        if let Some(index) = covered.iter().position(|&c| c != 1) {
            return Err(SplitError::Inconsistent {
                what: "test set",
                index,
                problem: "is not covered exactly once by non-members and insider records",
            });
        }
        Ok(())
    }

    /// The records under question, members first, and whether each is a member.
    ///
    /// # Panics
    /// If `train` or `test` is not the set the split was drawn on (an index out of range).
    pub fn challenge(&self, train: &Images, test: &Images) -> (Images, Vec<bool>) {
        let mut records = train.select(&self.members);
        let outside = test.select(&self.non_members);
        records.pixels.extend_from_slice(&outside.pixels);
        records.labels.extend_from_slice(&outside.labels);
        let member = (0..records.len()).map(|i| i < self.members.len()).collect();
        (records, member)
    }

    /// The insider's records.
    ///
    /// # Panics
    /// If `test` is not the set the split was drawn on.
    pub fn insider_records(&self, test: &Images) -> Images {
        test.select(&self.insider)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_what_it_claims_exactly_once() {
        let all: Vec<usize> = (0..100).collect();
        let half: Vec<usize> = (0..100).step_by(2).collect();
        let fifth: Vec<usize> = (0..100).step_by(10).collect();
        let split = Split::draw(
            &[&all, &half, &fifth],
            100,
            30,
            SplitConfig {
                per_side: 8,
                seed: 3,
            },
        )
        .expect("draws");
        assert_eq!(split.members.len(), 8);
        assert_eq!(split.non_members.len(), 8);
        assert_eq!(split.insider.len(), 22);
        assert!(split.members.iter().all(|m| m % 10 == 0));
        let mut test: Vec<usize> = split
            .non_members
            .iter()
            .chain(&split.insider)
            .copied()
            .collect();
        test.sort_unstable();
        assert_eq!(test, (0..30).collect::<Vec<_>>());
        // A broken split is caught.
        let mut bad = split.clone();
        bad.insider.push(bad.non_members[0]);
        assert!(matches!(
            bad.check(&[&all]),
            Err(SplitError::Inconsistent { .. })
        ));
        let mut bad = split.clone();
        bad.members[0] = 1;
        assert!(bad.check(&[&all, &fifth]).is_err());
        let mut bad = split;
        bad.members.pop();
        assert!(matches!(
            bad.check(&[&all]),
            Err(SplitError::Unbalanced { .. })
        ));
    }

    #[test]
    fn too_few_records_is_an_error() {
        let few: Vec<usize> = (0..5).collect();
        let cfg = SplitConfig {
            per_side: 6,
            seed: 0,
        };
        assert!(matches!(
            Split::draw(&[&few], 10, 100, cfg),
            Err(SplitError::NotEnough { .. })
        ));
        let many: Vec<usize> = (0..50).collect();
        assert!(matches!(
            Split::draw(&[&many], 50, 6, cfg),
            Err(SplitError::NotEnough { .. })
        ));
        assert_eq!(
            Split::draw(
                &[&many],
                50,
                60,
                SplitConfig {
                    per_side: 0,
                    seed: 0
                }
            ),
            Err(SplitError::Empty)
        );
    }
}
