//! Membership metrics: accuracy, recall and precision with Wilson intervals; the ROC curve,
//! its AUC, the TPR at a fixed FPR and the membership advantage.
//!
//! Conventions (those of scikit-learn, which the reference tools use):
//! * a score is "higher = more likely a member"; a record is predicted a member when its
//!   score is at least the threshold;
//! * [`roc`] has one point per distinct score, from the highest down, after `(0, 0)`;
//! * [`auc`] is the trapezoidal area under those points, which equals the Mann–Whitney
//!   probability that a random member outscores a random non-member, ties counting half;
//! * [`tpr_at_fpr`] is the highest TPR among the points whose FPR is *strictly* below the
//!   target, as Carlini et al.'s code reads it (`tpr[np.where(fpr < .001)[0][-1]]`);
//! * precision with no positive prediction is 0 (scikit-learn's `zero_division` result).

/// The two-sided 95 % normal quantile.
pub const Z95: f64 = 1.959_963_984_540_054;

/// A closed interval `[low, high]` within `[0, 1]`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Interval {
    /// Lower end.
    pub low: f64,
    /// Upper end.
    pub high: f64,
}

impl Interval {
    /// Half the width.
    pub fn half_width(&self) -> f64 {
        (self.high - self.low) / 2.0
    }

    /// Whether `x` lies inside.
    pub fn contains(&self, x: f64) -> bool {
        self.low <= x && x <= self.high
    }
}

/// The two-sided 99.9 % normal quantile: a 95 % family-wise level for up to 50
/// comparisons (Bonferroni), used to decide whether an attack beats chance.
pub const Z_STRICT: f64 = 3.290_526_731_491_926;

/// The 95 % Wilson score interval of a proportion of `successes` out of `trials`
/// (`[0, 1]` for no trial): [`wilson_z`] with [`Z95`].
pub fn wilson(successes: usize, trials: usize) -> Interval {
    wilson_z(successes, trials, Z95)
}

/// The Wilson score interval with normal quantile `z`.
///
/// With `p = k/n`: centre `(p + z²/2n) / (1 + z²/n)`, half-width
/// `z·sqrt(p(1−p)/n + z²/4n²) / (1 + z²/n)`.
pub fn wilson_z(successes: usize, trials: usize, z: f64) -> Interval {
    if trials == 0 {
        return Interval {
            low: 0.0,
            high: 1.0,
        };
    }
    let n = trials as f64;
    let p = successes.min(trials) as f64 / n;
    let z2 = z * z;
    let denominator = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denominator;
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denominator;
    Interval {
        low: (centre - half).max(0.0),
        high: (centre + half).min(1.0),
    }
}

/// The number of balanced records (half members) whose accuracy interval is at most
/// `±half_width` wide in the worst case (`p = 1/2`): `ceil((z / 2w)²)` with the normal
/// approximation, rounded up to an even number.
pub fn records_for_half_width(half_width: f64) -> usize {
    let n = (Z95 / (2.0 * half_width)).powi(2).ceil() as usize;
    n + n % 2
}

/// Counts of a membership prediction against the truth ("positive" = member).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Confusion {
    /// Members predicted members.
    pub true_positives: usize,
    /// Non-members predicted members.
    pub false_positives: usize,
    /// Non-members predicted non-members.
    pub true_negatives: usize,
    /// Members predicted non-members.
    pub false_negatives: usize,
}

impl Confusion {
    /// Counts `predicted[i]` against `actual[i]` (pairs beyond the shorter slice are ignored).
    pub fn new(predicted: &[bool], actual: &[bool]) -> Self {
        let mut c = Confusion::default();
        for (&p, &a) in predicted.iter().zip(actual) {
            match (p, a) {
                (true, true) => c.true_positives += 1,
                (true, false) => c.false_positives += 1,
                (false, false) => c.true_negatives += 1,
                (false, true) => c.false_negatives += 1,
            }
        }
        c
    }

    /// Adds another set of counts.
    pub fn add(&mut self, other: &Confusion) {
        self.true_positives += other.true_positives;
        self.false_positives += other.false_positives;
        self.true_negatives += other.true_negatives;
        self.false_negatives += other.false_negatives;
    }

    /// Records counted.
    pub fn total(&self) -> usize {
        self.true_positives + self.false_positives + self.true_negatives + self.false_negatives
    }

    fn correct(&self) -> usize {
        self.true_positives + self.true_negatives
    }

    fn members(&self) -> usize {
        self.true_positives + self.false_negatives
    }

    fn predicted_members(&self) -> usize {
        self.true_positives + self.false_positives
    }

    /// (TP + TN) / all, 0 for no record.
    pub fn accuracy(&self) -> f64 {
        ratio(self.correct(), self.total())
    }

    /// TP / (TP + FN): the fraction of members found, 0 for no member.
    pub fn recall(&self) -> f64 {
        ratio(self.true_positives, self.members())
    }

    /// TP / (TP + FP): the fraction of predicted members that are members, 0 when nothing
    /// is predicted a member.
    pub fn precision(&self) -> f64 {
        ratio(self.true_positives, self.predicted_members())
    }

    /// The Wilson interval of [`Confusion::accuracy`].
    pub fn accuracy_ci(&self) -> Interval {
        wilson(self.correct(), self.total())
    }

    /// The Wilson interval of [`Confusion::recall`].
    pub fn recall_ci(&self) -> Interval {
        wilson(self.true_positives, self.members())
    }

    /// The Wilson interval of [`Confusion::precision`].
    pub fn precision_ci(&self) -> Interval {
        wilson(self.true_positives, self.predicted_members())
    }
}

fn ratio(num: usize, den: usize) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

/// One point of a ROC curve.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct RocPoint {
    /// False-positive rate: non-members at or above the threshold / non-members.
    pub fpr: f64,
    /// True-positive rate: members at or above the threshold / members.
    pub tpr: f64,
}

/// A ROC curve with the counts behind it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Roc {
    /// `(0, 0)`, then one point per distinct score from the highest down; ends at `(1, 1)`.
    pub points: Vec<RocPoint>,
    /// Members scored.
    pub members: usize,
    /// Non-members scored.
    pub non_members: usize,
}

/// The ROC curve of `scores` (higher = member) against `member`. NaN scores rank lowest.
pub fn roc(scores: &[f64], member: &[bool]) -> Roc {
    let mut order: Vec<(f64, bool)> = scores
        .iter()
        .zip(member)
        .map(|(&s, &m)| (if s.is_nan() { f64::NEG_INFINITY } else { s }, m))
        .collect();
    order.sort_by(|a, b| b.0.total_cmp(&a.0));
    let members = order.iter().filter(|(_, m)| *m).count();
    let non_members = order.len() - members;
    let mut points = vec![RocPoint { fpr: 0.0, tpr: 0.0 }];
    let (mut tp, mut fp) = (0, 0);
    for (i, &(score, is_member)) in order.iter().enumerate() {
        if is_member {
            tp += 1;
        } else {
            fp += 1;
        }
        let last_of_tie = order.get(i + 1).is_none_or(|next| next.0 != score);
        if last_of_tie {
            points.push(RocPoint {
                fpr: ratio(fp, non_members),
                tpr: ratio(tp, members),
            });
        }
    }
    Roc {
        points,
        members,
        non_members,
    }
}

impl Roc {
    /// The trapezoidal area under the curve.
    pub fn auc(&self) -> f64 {
        self.points
            .windows(2)
            .map(|w| (w[1].fpr - w[0].fpr) * (w[1].tpr + w[0].tpr) / 2.0)
            .sum()
    }

    /// The highest TPR among points with FPR strictly below `fpr` (0 if none).
    pub fn tpr_at_fpr(&self, fpr: f64) -> f64 {
        self.points
            .iter()
            .filter(|p| p.fpr < fpr)
            .map(|p| p.tpr)
            .fold(0.0, f64::max)
    }

    /// [`Roc::tpr_at_fpr`] with the Wilson interval of that TPR over the members (the
    /// threshold's own sampling error is not included).
    pub fn tpr_at_fpr_ci(&self, fpr: f64) -> (f64, Interval) {
        let tpr = self.tpr_at_fpr(fpr);
        let found = (tpr * self.members as f64).round() as usize;
        (tpr, wilson(found, self.members))
    }

    /// Yeom et al.'s membership advantage: the largest TPR − FPR over the thresholds.
    pub fn advantage(&self) -> f64 {
        self.points
            .iter()
            .map(|p| p.tpr - p.fpr)
            .fold(0.0, f64::max)
    }

    /// At most `max_points` points of the curve, spaced evenly in log FPR between the
    /// smallest non-zero FPR and 1 (for a log-log plot), always keeping the ends.
    pub fn thinned(&self, max_points: usize) -> Vec<RocPoint> {
        if self.points.len() <= max_points.max(2) {
            return self.points.clone();
        }
        let step = 1.0 / self.non_members.max(1) as f64;
        let lo = step.ln();
        let mut out = Vec::with_capacity(max_points);
        let mut next = 0usize;
        for (i, p) in self.points.iter().enumerate() {
            let is_end = i == 0 || i + 1 == self.points.len();
            let bucket = if p.fpr > 0.0 {
                ((p.fpr.ln() - lo) / -lo * (max_points - 2) as f64).max(0.0) as usize
            } else {
                0
            };
            if is_end || bucket >= next {
                out.push(*p);
                next = bucket + 1;
            }
        }
        out
    }
}

/// The area under the ROC curve of `scores` against `member`.
pub fn auc(scores: &[f64], member: &[bool]) -> f64 {
    roc(scores, member).auc()
}

/// The TPR at FPR strictly below `fpr` of `scores` against `member`.
pub fn tpr_at_fpr(scores: &[f64], member: &[bool], fpr: f64) -> f64 {
    roc(scores, member).tpr_at_fpr(fpr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn wilson_matches_hand_computation() {
        // k = 5, n = 10, z = 1.959964: centre 0.5, half-width
        // z * sqrt(0.025 + z^2/400) / (1 + z^2/10) = 0.2659...
        let i = wilson(5, 10);
        assert!(close(i.low, 0.236_593_090_512_564), "{i:?}");
        assert!(close(i.high, 0.763_406_909_487_436), "{i:?}");
        // k = 0: the lower end is 0, the upper z^2/(n + z^2) = 3.8415/13.8415.
        let i = wilson(0, 10);
        assert!(close(i.low, 0.0));
        assert!(close(i.high, 0.277_532_799_862_889_2), "{i:?}");
        assert_eq!(
            wilson(0, 0),
            Interval {
                low: 0.0,
                high: 1.0
            }
        );
        // The strict level: k = 0 of 10 gives z^2/(n + z^2) = 10.8276/20.8276.
        let i = wilson_z(0, 10, Z_STRICT);
        assert!(close(i.high, 0.519_867_087_778_806_9), "{i:?}");
        assert!(wilson_z(5, 10, Z_STRICT).low < wilson(5, 10).low);
    }

    #[test]
    fn records_for_two_percent() {
        // (1.96 / 0.04)^2 = 2400.9 -> 2401 -> 2402 (even).
        assert_eq!(records_for_half_width(0.02), 2402);
        let n = records_for_half_width(0.02);
        assert!(wilson(n / 2, n).half_width() <= 0.02);
    }

    #[test]
    fn confusion_counts_and_rates() {
        let predicted = [true, true, false, false, true];
        let actual = [true, false, false, true, true];
        let c = Confusion::new(&predicted, &actual);
        assert_eq!(
            c,
            Confusion {
                true_positives: 2,
                false_positives: 1,
                true_negatives: 1,
                false_negatives: 1
            }
        );
        assert!(close(c.accuracy(), 0.6));
        assert!(close(c.recall(), 2.0 / 3.0));
        assert!(close(c.precision(), 2.0 / 3.0));
        let none = Confusion::new(&[false, false], &[true, false]);
        assert_eq!(none.precision(), 0.0);
        assert_eq!(none.recall(), 0.0);
    }

    #[test]
    fn roc_auc_and_tpr_by_hand() {
        // Scores 0.9 (m), 0.8 (n), 0.7 (m), 0.6 (m), 0.5 (n), 0.4 (n).
        // Pairs member > non-member: 0.9 beats 3, 0.7 beats 2, 0.6 beats 2 -> 7 of 9.
        let scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4];
        let member = [true, false, true, true, false, false];
        let r = roc(&scores, &member);
        let expected = [
            (0.0, 0.0),
            (0.0, 1.0 / 3.0),
            (1.0 / 3.0, 1.0 / 3.0),
            (1.0 / 3.0, 2.0 / 3.0),
            (1.0 / 3.0, 1.0),
            (2.0 / 3.0, 1.0),
            (1.0, 1.0),
        ];
        assert_eq!(r.points.len(), expected.len());
        for (p, (f, t)) in r.points.iter().zip(expected) {
            assert!(close(p.fpr, f) && close(p.tpr, t), "{p:?} vs ({f}, {t})");
        }
        assert!(close(r.auc(), 7.0 / 9.0));
        // FPR strictly below 1/3: only the points at FPR 0.
        assert!(close(r.tpr_at_fpr(1.0 / 3.0), 1.0 / 3.0));
        assert!(close(r.tpr_at_fpr(0.5), 1.0));
        assert!(close(r.tpr_at_fpr(0.0), 0.0));
        assert!(close(r.advantage(), 2.0 / 3.0));
    }

    #[test]
    fn ties_count_half() {
        // One member and one non-member with the same score: AUC 1/2.
        assert!(close(auc(&[1.0, 1.0], &[true, false]), 0.5));
        // Member 2, non-members {2, 1}: one win, one tie -> (1 + 0.5) / 2.
        assert!(close(auc(&[2.0, 2.0, 1.0], &[true, false, false]), 0.75));
        // Perfect and reversed separation.
        assert!(close(
            auc(&[3.0, 2.0, 1.0, 0.0], &[true, true, false, false]),
            1.0
        ));
        assert!(close(
            auc(&[0.0, 1.0, 2.0, 3.0], &[true, true, false, false]),
            0.0
        ));
        assert!(close(
            tpr_at_fpr(&[3.0, 2.0, 1.0, 0.0], &[true, true, false, false], 0.01),
            1.0
        ));
    }

    #[test]
    fn thinned_keeps_the_ends() {
        let scores: Vec<f64> = (0..1000).map(f64::from).collect();
        let member: Vec<bool> = (0..1000).map(|i| i % 3 == 0).collect();
        let r = roc(&scores, &member);
        let t = r.thinned(50);
        assert!(t.len() <= 60, "{}", t.len());
        assert_eq!(t.first(), r.points.first());
        assert_eq!(t.last(), r.points.last());
    }
}
