//! The BFV evaluator: homomorphic operations with tracked noise bounds.

use alloc::vec;
use alloc::vec::Vec;

use heist_core::rns::{Coeff, Eval, RnsBasis, RnsPoly};

use super::cipher::{check_fp, check_plain, scaled_plain};
use super::encoder::{rotation_galois_element, row_swap_galois_element};
use super::{BfvError, BfvParams, Ciphertext, Plaintext};
use crate::keys::{key_switch, GaloisKeys, KeySwitchScratch, RelinKey};

/// Evaluates homomorphic operations for one BFV parameter set. Operations that switch
/// keys (multiplication, rotations) take `&mut self` to reuse scratch buffers.
#[derive(Debug, Clone)]
pub struct Evaluator {
    params: BfvParams,
    scratch: KeySwitchScratch,
}

impl Evaluator {
    /// An evaluator for `params`.
    pub fn new(params: &BfvParams) -> Self {
        Self {
            params: params.clone(),
            scratch: KeySwitchScratch::default(),
        }
    }

    /// The parameters.
    pub fn params(&self) -> &BfvParams {
        &self.params
    }

    fn basis(&self) -> &RnsBasis {
        self.params.he().basis()
    }

    fn check(&self, a: &Ciphertext) -> Result<(), BfvError> {
        check_fp(self.params.fingerprint(), a.fingerprint)
    }

    fn with(&self, c0: RnsPoly<Eval>, c1: RnsPoly<Eval>, noise_bound: f64) -> Ciphertext {
        Ciphertext::from_parts(&self.params, c0, c1, noise_bound)
    }

    /// `a + b`.
    ///
    /// # Errors
    /// [`BfvError::ForeignObject`].
    pub fn add(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext, BfvError> {
        let mut out = a.clone();
        self.add_assign(&mut out, b)?;
        Ok(out)
    }

    /// `a += b`.
    ///
    /// # Errors
    /// [`BfvError::ForeignObject`].
    pub fn add_assign(&self, a: &mut Ciphertext, b: &Ciphertext) -> Result<(), BfvError> {
        self.check(a)?;
        self.check(b)?;
        a.c0.add_assign(&b.c0, self.basis());
        a.c1.add_assign(&b.c1, self.basis());
        a.noise_bound += b.noise_bound;
        a.seed = None;
        Ok(())
    }

    /// `a - b`.
    ///
    /// # Errors
    /// [`BfvError::ForeignObject`].
    pub fn sub(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext, BfvError> {
        self.check(a)?;
        self.check(b)?;
        let mut out = a.clone();
        out.c0.sub_assign(&b.c0, self.basis());
        out.c1.sub_assign(&b.c1, self.basis());
        out.noise_bound += b.noise_bound;
        out.seed = None;
        Ok(out)
    }

    /// `-a`.
    ///
    /// # Errors
    /// [`BfvError::ForeignObject`].
    pub fn neg(&self, a: &Ciphertext) -> Result<Ciphertext, BfvError> {
        self.check(a)?;
        let mut out = a.clone();
        out.c0.neg_assign(self.basis());
        out.c1.neg_assign(self.basis());
        out.seed = None;
        Ok(out)
    }

    /// `a + p`.
    ///
    /// # Errors
    /// [`BfvError::ForeignObject`], [`BfvError::PlainMismatch`].
    pub fn add_plain(&self, a: &Ciphertext, p: &Plaintext) -> Result<Ciphertext, BfvError> {
        self.combine_plain(a, p, RnsPoly::add_assign)
    }

    /// `a - p`.
    ///
    /// # Errors
    /// [`BfvError::ForeignObject`], [`BfvError::PlainMismatch`].
    pub fn sub_plain(&self, a: &Ciphertext, p: &Plaintext) -> Result<Ciphertext, BfvError> {
        self.combine_plain(a, p, RnsPoly::sub_assign)
    }

    /// `a` with `op(c_0, round(Q·p/t))` (addition or subtraction of the scaled plaintext).
    fn combine_plain(
        &self,
        a: &Ciphertext,
        p: &Plaintext,
        op: fn(&mut RnsPoly<Eval>, &RnsPoly<Eval>, &RnsBasis),
    ) -> Result<Ciphertext, BfvError> {
        self.check(a)?;
        check_plain(&self.params, p)?;
        let mut out = a.clone();
        op(&mut out.c0, &scaled_plain(&self.params, p), self.basis());
        out.noise_bound = self.params.noise_model().add_plain(a.noise_bound);
        out.seed = None;
        Ok(out)
    }

    /// The plaintext lifted to its centred coefficients modulo `Q`, in evaluation form:
    /// the operand of [`Self::mul_plain`], reusable across many products.
    ///
    /// # Errors
    /// [`BfvError::PlainMismatch`].
    pub fn lift_plain(&self, p: &Plaintext) -> Result<RnsPoly<Eval>, BfvError> {
        check_plain(&self.params, p)?;
        let t = self.params.plain_modulus();
        let centred: Vec<i64> = p.coeffs.iter().map(|&c| t.centre(c)).collect();
        let l = self.params.he().max_level();
        Ok(RnsPoly::<Coeff>::from_signed(&centred, l, self.basis()).into_eval(self.basis()))
    }

    /// `a · p` (slot-wise product); the noise grows by `‖p‖₁` of the centred plaintext.
    ///
    /// # Errors
    /// [`BfvError::ForeignObject`], [`BfvError::PlainMismatch`].
    pub fn mul_plain(&self, a: &Ciphertext, p: &Plaintext) -> Result<Ciphertext, BfvError> {
        self.check(a)?;
        let lifted = self.lift_plain(p)?;
        let mut out = a.clone();
        out.c0.mul_assign(&lifted, self.basis());
        out.c1.mul_assign(&lifted, self.basis());
        out.noise_bound = self
            .params
            .noise_model()
            .floor(a.noise_bound * p.centred_l1());
        out.seed = None;
        Ok(out)
    }

    /// `c · a` for an integer `c`, taken modulo `t` and centred; the noise grows by `|c|`
    /// (centred).
    ///
    /// # Errors
    /// [`BfvError::ForeignObject`].
    pub fn mul_scalar(&self, a: &Ciphertext, c: i64) -> Result<Ciphertext, BfvError> {
        self.dot_scalar(&[a], &[c])
    }

    /// The linear combination `Σ w_i · a_i` for integer weights (each taken modulo `t` and
    /// centred), with deferred reduction: products are accumulated in `u128` and reduced
    /// once every sixteen terms (each product is below `2^124`), so a sum of `m` terms
    /// costs `m` multiplications and `m/16` reductions per residue.
    ///
    /// # Errors
    /// [`BfvError::LengthMismatch`] for unequal or zero counts; [`BfvError::ForeignObject`].
    pub fn dot_scalar(&self, cts: &[&Ciphertext], weights: &[i64]) -> Result<Ciphertext, BfvError> {
        if cts.is_empty() || cts.len() != weights.len() {
            return Err(BfvError::LengthMismatch {
                ciphertexts: cts.len(),
                weights: weights.len(),
            });
        }
        let t = self.params.plain_modulus();
        let centred: Vec<i64> = weights.iter().map(|&w| t.centre(t.from_i64(w))).collect();
        let mut bound = 0.0;
        for (ct, &w) in cts.iter().zip(&centred) {
            self.check(ct)?;
            bound += w.unsigned_abs() as f64 * ct.noise_bound;
        }
        let n = self.params.n();
        let l = self.params.he().max_level();
        let mut out0 = RnsPoly::<Eval>::zero(n, l);
        let mut out1 = RnsPoly::<Eval>::zero(n, l);
        let mut acc = vec![0u128; n];
        let mut residues = Vec::with_capacity(cts.len());
        for (i, q) in self.params.chain_moduli().iter().enumerate() {
            residues.clear();
            residues.extend(centred.iter().map(|&w| q.from_i64(w)));
            for (out, first) in [(&mut out0, true), (&mut out1, false)] {
                acc.fill(0);
                for (j, (ct, &w)) in cts.iter().zip(&residues).enumerate() {
                    let src = if first { ct.c0.limb(i) } else { ct.c1.limb(i) };
                    for (a, &x) in acc.iter_mut().zip(src) {
                        *a += u128::from(x) * u128::from(w);
                    }
                    if j % 16 == 15 {
                        for a in acc.iter_mut() {
                            *a = u128::from(q.reduce_u128(*a));
                        }
                    }
                }
                for (o, &a) in out.limb_mut(i).iter_mut().zip(&acc) {
                    *o = q.reduce_u128(a);
                }
            }
        }
        Ok(self.with(out0, out1, bound))
    }

    /// `a · b` (slot-wise product) with relinearisation: the HPS tensor product
    /// ([`super::rns`]), then the `s²` part switched to `s` with `rlk`.
    ///
    /// # Errors
    /// [`BfvError::ForeignObject`] for operands or a key of other parameters.
    pub fn mul(
        &mut self,
        a: &Ciphertext,
        b: &Ciphertext,
        rlk: &RelinKey,
    ) -> Result<Ciphertext, BfvError> {
        self.check(a)?;
        self.check(b)?;
        check_fp(self.params.he().fingerprint(), rlk.key().fingerprint())?;
        let other = (!core::ptr::eq(a, b)).then_some([&b.c0, &b.c1]);
        let parts = tensor(&self.params, [&a.c0, &a.c1], other);
        let (c0, c1) = relinearize(&self.params, parts, rlk, &mut self.scratch);
        let bound = self
            .params
            .noise_model()
            .mul_relin(a.noise_bound, b.noise_bound);
        Ok(self.with(c0, c1, bound))
    }

    /// `a²` with relinearisation.
    ///
    /// # Errors
    /// As [`Self::mul`].
    pub fn square(&mut self, a: &Ciphertext, rlk: &RelinKey) -> Result<Ciphertext, BfvError> {
        self.mul(a, a, rlk)
    }

    /// Applies `X → X^g` and switches back to `s` with the Galois key of `g`.
    fn apply_galois(
        &mut self,
        a: &Ciphertext,
        g: u64,
        gk: &GaloisKeys,
    ) -> Result<Ciphertext, BfvError> {
        self.check(a)?;
        check_fp(self.params.he().fingerprint(), gk.fingerprint())?;
        let key = gk.get(g).ok_or(BfvError::MissingGaloisKey { element: g })?;
        let n = self.params.n();
        let l = self.params.he().max_level();
        let mut c0 = RnsPoly::<Eval>::zero(n, l);
        crate::galois::apply(key.permutation(), &a.c0, &mut c0);
        let mut rc1 = RnsPoly::<Eval>::zero(n, l);
        crate::galois::apply(key.permutation(), &a.c1, &mut rc1);
        let mut c1 = RnsPoly::<Eval>::zero(n, l);
        key_switch(
            self.params.he(),
            key.key(),
            &rc1,
            &mut c0,
            &mut c1,
            &mut self.scratch,
        );
        let bound = self.params.noise_model().key_switch(a.noise_bound);
        Ok(self.with(c0, c1, bound))
    }

    /// Rotates both rows of the `2 × N/2` slot matrix left by `steps` (right for negative
    /// `steps`), with the Galois key of [`rotation_galois_element`]`(N, steps)`.
    ///
    /// # Errors
    /// [`BfvError::MissingGaloisKey`], [`BfvError::ForeignObject`].
    pub fn rotate_rows(
        &mut self,
        a: &Ciphertext,
        steps: i64,
        gk: &GaloisKeys,
    ) -> Result<Ciphertext, BfvError> {
        let g = rotation_galois_element(self.params.n(), steps);
        self.apply_galois(a, g, gk)
    }

    /// Swaps the two rows, with the Galois key of [`row_swap_galois_element`]`(N)`.
    ///
    /// # Errors
    /// [`BfvError::MissingGaloisKey`], [`BfvError::ForeignObject`].
    pub fn swap_rows(&mut self, a: &Ciphertext, gk: &GaloisKeys) -> Result<Ciphertext, BfvError> {
        let g = row_swap_galois_element(self.params.n());
        self.apply_galois(a, g, gk)
    }
}

/// The centred lift of `x` (modulo `Q`) to the auxiliary basis `P`, in evaluation form.
fn to_aux(params: &BfvParams, x: &RnsPoly<Coeff>) -> RnsPoly<Eval> {
    params.extend_q_to_p.extend(x).into_eval(params.aux_basis())
}

/// `round(t/Q · d)` for `d` given modulo `Q` and `P` (evaluation form), back modulo `Q`
/// in evaluation form.
fn scale_down(params: &BfvParams, dq: RnsPoly<Eval>, dp: RnsPoly<Eval>) -> RnsPoly<Eval> {
    let q = dq.into_coeff(params.he().basis());
    let p = dp.into_coeff(params.aux_basis());
    let scaled = params.scale_mul.scale(&q, Some(&p));
    params
        .extend_p_to_q
        .extend(&scaled)
        .into_eval(params.he().basis())
}

/// The parts `(d_0, d_1, d_2)` of `round(t/Q · x ⊗ y)`, decrypting under `(1, s, s²)`
/// for `params` (HPS, [`super::rns`]): the four polynomials are lifted exactly to `Q ∪ P`, the
/// tensor product is taken there, scaled by `t/Q` and brought back to `Q`. For a square
/// (`y = None`) the middle part is `(2 x_0) x_1`: three products instead of four.
///
/// # Ranges
/// Full-chain polynomials of these parameters, residues in `[0, q_i)` → the same.
pub(crate) fn tensor(
    params: &BfvParams,
    x: [&RnsPoly<Eval>; 2],
    y: Option<[&RnsPoly<Eval>; 2]>,
) -> [RnsPoly<Eval>; 3] {
    let basis = params.he().basis();
    let aux = params.aux_basis();
    let lift = |p: &RnsPoly<Eval>| to_aux(params, &p.clone().into_coeff(basis));
    let products =
        |[x0, x1]: [&RnsPoly<Eval>; 2], y: Option<[&RnsPoly<Eval>; 2]>, bs: &RnsBasis| {
            let mut d0 = x0.clone();
            let mut d1 = x0.clone();
            let mut d2 = x1.clone();
            match y {
                None => {
                    d0.mul_assign(x0, bs);
                    d1.add_assign(x0, bs);
                    d1.mul_assign(x1, bs);
                    d2.mul_assign(x1, bs);
                }
                Some([y0, y1]) => {
                    d0.mul_assign(y0, bs);
                    d1.mul_assign(y1, bs);
                    d1.mul_add_assign(x1, y0, bs);
                    d2.mul_assign(y1, bs);
                }
            }
            [d0, d1, d2]
        };
    let xp = [lift(x[0]), lift(x[1])];
    let dp = match y {
        None => products([&xp[0], &xp[1]], None, aux),
        Some(y) => {
            let yp = [lift(y[0]), lift(y[1])];
            products([&xp[0], &xp[1]], Some([&yp[0], &yp[1]]), aux)
        }
    };
    drop(xp);
    let dq = products(x, y, basis);
    let [q0, q1, q2] = dq;
    let [p0, p1, p2] = dp;
    [
        scale_down(params, q0, p0),
        scale_down(params, q1, p1),
        scale_down(params, q2, p2),
    ]
}

/// Switches the `s²` part of `(d_0, d_1, d_2)` to `s` with `rlk` (buffers in `scratch`): `(c_0, c_1)` with
/// `c_0 + c_1 s ≈ d_0 + d_1 s + d_2 s²` (the noise grows by
/// [`super::noise::NoiseModel::key_switch`]).
///
/// # Ranges
/// Full-chain polynomials, residues in `[0, q_i)` → the same.
///
/// # Panics
/// If `rlk` belongs to other parameters (checked by the public callers).
pub(crate) fn relinearize(
    params: &BfvParams,
    [mut c0, mut c1, c2]: [RnsPoly<Eval>; 3],
    rlk: &RelinKey,
    scratch: &mut KeySwitchScratch,
) -> (RnsPoly<Eval>, RnsPoly<Eval>) {
    key_switch(params.he(), rlk.key(), &c2, &mut c0, &mut c1, scratch);
    (c0, c1)
}
