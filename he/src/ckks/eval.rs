//! The CKKS evaluator: homomorphic operations on [`Ciphertext`]s with tracked bounds.
//!
//! Every operation whose result could outgrow its modulus (sums, products, constants,
//! key switches, dropping primes) compares the result's tracked `Δ·M + E` with `Q_ℓ / 2`
//! and refuses with [`CkksError::Capacity`] instead of returning a ciphertext that has
//! wrapped; an in-place sum that is refused leaves its operand unchanged.

use alloc::vec;
use alloc::vec::Vec;

use heist_core::arith::ShoupConst;
use heist_core::rns::{divide_round_limb, Eval, RnsBasis, RnsPoly};

use super::{
    check_capacity, check_fp, Ciphertext, CkksError, CkksParams, Plaintext, SCALE_TOLERANCE,
};
use crate::galois::{conjugation_element, rotation_element};
use crate::keys::{
    key_switch, keyswitch_noise_bound, rounding_bound, GaloisKeys, KeySwitchKey, KeySwitchScratch,
    RelinKey,
};
use crate::params::HeParams;

/// Evaluates homomorphic operations for one parameter set. Operations that switch keys
/// (multiplication with relinearisation, rotation, conjugation) take `&mut self` to reuse
/// scratch buffers; the others take `&self`.
#[derive(Debug, Clone)]
pub struct Evaluator {
    params: CkksParams,
    scratch: KeySwitchScratch,
    buf: Vec<u64>,
}

impl Evaluator {
    /// An evaluator for `params`.
    pub fn new(params: &CkksParams) -> Self {
        Self {
            params: params.clone(),
            scratch: KeySwitchScratch::default(),
            buf: Vec::new(),
        }
    }

    /// The parameters.
    pub fn params(&self) -> &CkksParams {
        &self.params
    }

    fn he(&self) -> &HeParams {
        self.params.he()
    }

    fn check_ct(&self, a: &Ciphertext) -> Result<(), CkksError> {
        check_fp(self.he(), a.fingerprint)
    }

    /// Checks two operands for addition and returns the extra error (integer units at the
    /// left scale) that a small scale difference adds: `|Δ_b - Δ_a| M_b`.
    fn check_add(
        &self,
        a: &Ciphertext,
        level: usize,
        scale: f64,
        msg: f64,
    ) -> Result<f64, CkksError> {
        self.check_ct(a)?;
        if a.level() != level {
            return Err(CkksError::LevelMismatch {
                left: a.level(),
                right: level,
            });
        }
        let diff = libm::fabs(a.scale - scale);
        if diff > SCALE_TOLERANCE * a.scale {
            return Err(CkksError::ScaleMismatch {
                left: a.scale,
                right: scale,
            });
        }
        Ok(diff * msg)
    }

    /// `a + b`.
    ///
    /// # Errors
    /// [`CkksError::ForeignObject`], [`CkksError::LevelMismatch`],
    /// [`CkksError::ScaleMismatch`].
    pub fn add(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext, CkksError> {
        let mut out = a.clone();
        self.add_assign(&mut out, b)?;
        Ok(out)
    }

    /// `a += b`.
    ///
    /// # Errors
    /// As [`Self::add`].
    pub fn add_assign(&self, a: &mut Ciphertext, b: &Ciphertext) -> Result<(), CkksError> {
        self.combine_assign(a, b, RnsPoly::add_assign)
    }

    /// `a ← a ∘ b` limb-wise for `∘` = `op` (addition or subtraction): the checks and the
    /// bound updates are the same for both.
    fn combine_assign(
        &self,
        a: &mut Ciphertext,
        b: &Ciphertext,
        op: fn(&mut RnsPoly<Eval>, &RnsPoly<Eval>, &RnsBasis),
    ) -> Result<(), CkksError> {
        self.check_ct(b)?;
        let extra = self.check_add(a, b.level(), b.scale, b.msg_bound)?;
        let msg = a.msg_bound + b.msg_bound;
        let err = a.err_bound + b.err_bound + extra;
        // Checked before `a` changes, so a refused sum leaves `a` as it was.
        check_capacity(self.he(), a.level(), a.scale, msg, err)?;
        let basis = self.he().basis();
        op(&mut a.c0, &b.c0, basis);
        op(&mut a.c1, &b.c1, basis);
        a.msg_bound = msg;
        a.err_bound = err;
        a.seed = None;
        Ok(())
    }

    /// `a - b`.
    ///
    /// # Errors
    /// As [`Self::add`].
    pub fn sub(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext, CkksError> {
        let mut out = a.clone();
        self.sub_assign(&mut out, b)?;
        Ok(out)
    }

    /// `a -= b`.
    ///
    /// # Errors
    /// As [`Self::add`].
    pub fn sub_assign(&self, a: &mut Ciphertext, b: &Ciphertext) -> Result<(), CkksError> {
        self.combine_assign(a, b, RnsPoly::sub_assign)
    }

    /// `-a`.
    ///
    /// # Errors
    /// [`CkksError::ForeignObject`].
    pub fn neg(&self, a: &Ciphertext) -> Result<Ciphertext, CkksError> {
        self.check_ct(a)?;
        let mut out = a.clone();
        let basis = self.he().basis();
        out.c0.neg_assign(basis);
        out.c1.neg_assign(basis);
        out.seed = None;
        Ok(out)
    }

    fn check_pt(&self, a: &Ciphertext, p: &Plaintext) -> Result<(), CkksError> {
        self.check_ct(a)?;
        check_fp(self.he(), p.fingerprint)?;
        if p.level() < a.level() {
            return Err(CkksError::LevelMismatch {
                left: a.level(),
                right: p.level(),
            });
        }
        Ok(())
    }

    /// `a + p` (the plaintext may be at a higher level; its top limbs are ignored).
    ///
    /// # Errors
    /// [`CkksError::ForeignObject`], [`CkksError::LevelMismatch`] if the plaintext is at a
    /// lower level, [`CkksError::ScaleMismatch`].
    pub fn add_plain(&self, a: &Ciphertext, p: &Plaintext) -> Result<Ciphertext, CkksError> {
        self.combine_plain(a, p, RnsPoly::add_assign)
    }

    /// `a - p`.
    ///
    /// # Errors
    /// As [`Self::add_plain`].
    pub fn sub_plain(&self, a: &Ciphertext, p: &Plaintext) -> Result<Ciphertext, CkksError> {
        self.combine_plain(a, p, RnsPoly::sub_assign)
    }

    /// `a` with `op(c_0, p)` (addition or subtraction), the checks and bounds of both.
    fn combine_plain(
        &self,
        a: &Ciphertext,
        p: &Plaintext,
        op: fn(&mut RnsPoly<Eval>, &RnsPoly<Eval>, &RnsBasis),
    ) -> Result<Ciphertext, CkksError> {
        self.check_pt(a, p)?;
        let extra = self.check_add(a, a.level(), p.scale, p.msg_bound)?;
        let mut out = a.clone();
        op(&mut out.c0, &p.poly, self.he().basis());
        out.msg_bound += p.msg_bound;
        out.err_bound += p.err_bound + extra;
        out.seed = None;
        out.within_capacity(self.he())
    }

    /// `a · p`; the scale becomes `Δ_a Δ_p` (rescale afterwards).
    ///
    /// # Errors
    /// [`CkksError::ForeignObject`], [`CkksError::LevelMismatch`] if the plaintext is at a
    /// lower level.
    pub fn mul_plain(&self, a: &Ciphertext, p: &Plaintext) -> Result<Ciphertext, CkksError> {
        self.check_pt(a, p)?;
        let basis = self.he().basis();
        let mut out = a.clone();
        out.c0.mul_assign(&p.poly, basis);
        out.c1.mul_assign(&p.poly, basis);
        out.err_bound = a.err_bound * (p.scale * p.msg_bound + p.err_bound)
            + a.scale * a.msg_bound * p.err_bound;
        out.msg_bound = a.msg_bound * p.msg_bound;
        out.scale = a.scale * p.scale;
        out.seed = None;
        out.within_capacity(self.he())
    }

    fn integer_constants(&self, c: i64, level: usize) -> Vec<ShoupConst> {
        let basis = self.he().basis();
        (0..level)
            .map(|i| {
                let q = basis.modulus(i);
                q.shoup(q.from_i64(c))
            })
            .collect()
    }

    /// `c · a` for an integer `c`: no level consumed, scale unchanged.
    ///
    /// # Errors
    /// [`CkksError::ForeignObject`].
    pub fn mul_integer(&self, a: &Ciphertext, c: i64) -> Result<Ciphertext, CkksError> {
        self.check_ct(a)?;
        let mut out = a.clone();
        let w = self.integer_constants(c, a.level());
        let basis = self.he().basis();
        out.c0.mul_scalar_assign(&w, basis);
        out.c1.mul_scalar_assign(&w, basis);
        let m = c.unsigned_abs() as f64;
        out.msg_bound *= m;
        out.err_bound *= m;
        out.seed = None;
        out.within_capacity(self.he())
    }

    /// `c · a` for a real `c`, as the integer `round(c · scale)`: the result's scale is
    /// `Δ_a · scale` (rescale afterwards).
    ///
    /// # Errors
    /// [`CkksError::ForeignObject`], [`CkksError::BadScale`], [`CkksError::Overflow`].
    pub fn mul_real(&self, a: &Ciphertext, c: f64, scale: f64) -> Result<Ciphertext, CkksError> {
        super::check_scale(scale)?;
        let ci = super::to_i64(c * scale)?;
        let mut out = self.mul_integer(a, ci)?;
        // The rounding of the constant, |ci - c·scale| <= 1/2, multiplies the message.
        out.err_bound += 0.5 * a.scale * a.msg_bound;
        out.msg_bound = a.msg_bound * libm::fabs(c);
        out.scale = a.scale * scale;
        out.within_capacity(self.he())
    }

    /// `a + c` in every slot, for a real constant `c` (encoded at the ciphertext's scale).
    ///
    /// # Errors
    /// [`CkksError::ForeignObject`], [`CkksError::Overflow`].
    pub fn add_real(&self, a: &Ciphertext, c: f64) -> Result<Ciphertext, CkksError> {
        self.check_ct(a)?;
        let v = super::to_i64(c * a.scale)?;
        let basis = self.he().basis();
        let mut out = a.clone();
        // A constant polynomial evaluates to the same value at every point.
        for i in 0..a.level() {
            let q = basis.modulus(i);
            let x = q.from_i64(v);
            for y in out.c0.limb_mut(i).iter_mut() {
                *y = q.add(*y, x);
            }
        }
        out.msg_bound += libm::fabs(c);
        out.err_bound += 0.5;
        out.seed = None;
        out.within_capacity(self.he())
    }

    /// The linear combination `Σ w_i · a_i` for integer weights, with one modular reduction
    /// per output residue: products are accumulated in `u128` and folded only when the sum
    /// could overflow. No level is consumed; the scale is that of the inputs.
    ///
    /// # Errors
    /// [`CkksError::LengthMismatch`] for unequal or zero counts; as [`Self::add`] for
    /// operands of different levels, scales or parameters.
    pub fn dot_integer(
        &self,
        cts: &[&Ciphertext],
        weights: &[i64],
    ) -> Result<Ciphertext, CkksError> {
        let first = match cts.first() {
            Some(f) if cts.len() == weights.len() => *f,
            _ => {
                return Err(CkksError::LengthMismatch {
                    ciphertexts: cts.len(),
                    weights: weights.len(),
                })
            }
        };
        let mut err = 0.0;
        let mut msg = 0.0;
        for (ct, &w) in cts.iter().zip(weights) {
            self.check_ct(ct)?;
            let extra = self.check_add(first, ct.level(), ct.scale, ct.msg_bound)?;
            let m = w.unsigned_abs() as f64;
            err += m * (ct.err_bound + extra);
            msg += m * ct.msg_bound;
        }
        let he = self.he();
        let n = he.n();
        let k = first.level();
        let basis = he.basis();
        let mut out0 = RnsPoly::<Eval>::zero(n, k);
        let mut out1 = RnsPoly::<Eval>::zero(n, k);
        let mut acc = vec![0u128; n];
        let mut residues = Vec::with_capacity(cts.len());
        for i in 0..k {
            let q = basis.modulus(i);
            let p = q.value();
            residues.clear();
            residues.extend(weights.iter().map(|&w| q.from_i64(w)));
            // Each product is below (p-1)^2; `fold` of them plus a reduced residue fit a u128.
            let fold =
                (u128::MAX / ((p - 1) as u128 * (p - 1) as u128) - 1).clamp(1, 1 << 20) as usize;
            for (out, pick) in [(&mut out0, 0usize), (&mut out1, 1usize)] {
                acc.fill(0);
                for (t, (ct, &w)) in cts.iter().zip(&residues).enumerate() {
                    let src = if pick == 0 {
                        ct.c0.limb(i)
                    } else {
                        ct.c1.limb(i)
                    };
                    for (a, &x) in acc.iter_mut().zip(src) {
                        *a += x as u128 * w as u128;
                    }
                    if t % fold == fold - 1 {
                        for a in acc.iter_mut() {
                            *a = q.reduce_u128(*a) as u128;
                        }
                    }
                }
                for (o, &a) in out.limb_mut(i).iter_mut().zip(&acc) {
                    *o = q.reduce_u128(a);
                }
            }
        }
        Ciphertext {
            fingerprint: he.fingerprint(),
            c0: out0,
            c1: out1,
            scale: first.scale,
            msg_bound: msg,
            err_bound: err,
            seed: None,
        }
        .within_capacity(he)
    }

    /// The linear combination `Σ c_i · a_i` for real weights, each rounded to
    /// `round(c_i · scale)`: the result's scale is `Δ · scale` (rescale afterwards).
    ///
    /// # Errors
    /// As [`Self::dot_integer`], [`CkksError::BadScale`], [`CkksError::Overflow`].
    pub fn dot_real(
        &self,
        cts: &[&Ciphertext],
        weights: &[f64],
        scale: f64,
    ) -> Result<Ciphertext, CkksError> {
        super::check_scale(scale)?;
        let ints = weights
            .iter()
            .map(|&c| super::to_i64(c * scale))
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = self.dot_integer(cts, &ints)?;
        let mut rounding = 0.0;
        let mut msg = 0.0;
        for (ct, &c) in cts.iter().zip(weights) {
            rounding += 0.5 * ct.scale * ct.msg_bound;
            msg += libm::fabs(c) * ct.msg_bound;
        }
        out.err_bound += rounding;
        out.msg_bound = msg;
        out.scale *= scale;
        out.within_capacity(self.he())
    }

    /// `a · b` followed by relinearisation; the scale becomes `Δ_a Δ_b`.
    ///
    /// # Errors
    /// [`CkksError::ForeignObject`], [`CkksError::LevelMismatch`].
    pub fn mul_relin(
        &mut self,
        a: &Ciphertext,
        b: &Ciphertext,
        rlk: &RelinKey,
    ) -> Result<Ciphertext, CkksError> {
        self.check_ct(a)?;
        self.check_ct(b)?;
        check_fp(self.he(), rlk.key().fingerprint())?;
        if a.level() != b.level() {
            return Err(CkksError::LevelMismatch {
                left: a.level(),
                right: b.level(),
            });
        }
        let he = self.params.he();
        let basis = he.basis();
        // (a0 + a1 s)(b0 + b1 s) = a0 b0 + (a0 b1 + a1 b0) s + a1 b1 s².
        let mut d0 = a.c0.clone();
        d0.mul_assign(&b.c0, basis);
        let mut d1 = a.c0.clone();
        d1.mul_assign(&b.c1, basis);
        d1.mul_add_assign(&a.c1, &b.c0, basis);
        let mut d2 = a.c1.clone();
        d2.mul_assign(&b.c1, basis);
        key_switch(he, rlk.key(), &d2, &mut d0, &mut d1, &mut self.scratch);
        let ks = keyswitch_noise_bound(he, a.level());
        Ciphertext {
            fingerprint: he.fingerprint(),
            c0: d0,
            c1: d1,
            scale: a.scale * b.scale,
            msg_bound: a.msg_bound * b.msg_bound,
            err_bound: a.scale * a.msg_bound * b.err_bound
                + b.scale * b.msg_bound * a.err_bound
                + a.err_bound * b.err_bound
                + ks,
            seed: None,
        }
        .within_capacity(he)
    }

    /// `a²` with relinearisation (one product fewer than [`Self::mul_relin`]).
    ///
    /// # Errors
    /// [`CkksError::ForeignObject`].
    pub fn square_relin(
        &mut self,
        a: &Ciphertext,
        rlk: &RelinKey,
    ) -> Result<Ciphertext, CkksError> {
        self.check_ct(a)?;
        check_fp(self.he(), rlk.key().fingerprint())?;
        let he = self.params.he();
        let basis = he.basis();
        let mut d0 = a.c0.clone();
        d0.mul_assign(&a.c0, basis);
        let mut d1 = a.c0.clone();
        d1.mul_assign(&a.c1, basis);
        let d1c = d1.clone();
        d1.add_assign(&d1c, basis);
        let mut d2 = a.c1.clone();
        d2.mul_assign(&a.c1, basis);
        key_switch(he, rlk.key(), &d2, &mut d0, &mut d1, &mut self.scratch);
        let ks = keyswitch_noise_bound(he, a.level());
        Ciphertext {
            fingerprint: he.fingerprint(),
            c0: d0,
            c1: d1,
            scale: a.scale * a.scale,
            msg_bound: a.msg_bound * a.msg_bound,
            err_bound: 2.0 * a.scale * a.msg_bound * a.err_bound + a.err_bound * a.err_bound + ks,
            seed: None,
        }
        .within_capacity(he)
    }

    /// Divides by the last prime `q_{k-1}` with rounding and drops it: level `k → k-1`,
    /// scale `Δ → Δ / q_{k-1}`.
    ///
    /// # Errors
    /// [`CkksError::ForeignObject`]; [`CkksError::BadLevel`] at level 1.
    pub fn rescale(&mut self, a: &Ciphertext) -> Result<Ciphertext, CkksError> {
        let mut out = a.clone();
        self.rescale_assign(&mut out)?;
        Ok(out)
    }

    /// In-place [`Self::rescale`].
    ///
    /// # Errors
    /// As [`Self::rescale`].
    pub fn rescale_assign(&mut self, a: &mut Ciphertext) -> Result<(), CkksError> {
        self.check_ct(a)?;
        let k = a.level();
        if k < 2 {
            return Err(CkksError::BadLevel {
                level: k,
                requested: k.saturating_sub(1),
            });
        }
        // A message that no longer fits has wrapped: dividing it would hide that.
        check_capacity(self.params.he(), k, a.scale, a.msg_bound, a.err_bound)?;
        let he = self.params.he();
        let basis = he.basis();
        let n = he.n();
        let last = k - 1;
        let q_last = he.chain()[last];
        let inv = he.rescale_inv(last);
        self.buf.resize(2 * n, 0);
        let (last_coeff, tmp) = self.buf.split_at_mut(n);
        for c in [&mut a.c0, &mut a.c1] {
            last_coeff.copy_from_slice(c.limb(last));
            basis.plan(last).inverse(last_coeff);
            for (i, &w) in inv.iter().enumerate() {
                divide_round_limb(c.limb_mut(i), basis.plan(i), last_coeff, q_last, w, tmp);
            }
            c.truncate(last);
        }
        let q = q_last as f64;
        a.scale /= q;
        a.err_bound = a.err_bound / q + rounding_bound(n as f64);
        a.seed = None;
        Ok(())
    }

    /// Drops limbs down to `level` without dividing (the message and scale are unchanged).
    ///
    /// # Errors
    /// [`CkksError::ForeignObject`]; [`CkksError::BadLevel`] unless
    /// `1 <= level <= a.level()`.
    pub fn mod_switch_to(&self, a: &Ciphertext, level: usize) -> Result<Ciphertext, CkksError> {
        self.check_ct(a)?;
        if level == 0 || level > a.level() {
            return Err(CkksError::BadLevel {
                level: a.level(),
                requested: level,
            });
        }
        // Dropping primes keeps the scale: the message must fit the smaller modulus.
        check_capacity(self.he(), level, a.scale, a.msg_bound, a.err_bound)?;
        let mut out = a.clone();
        out.c0.truncate(level);
        out.c1.truncate(level);
        out.seed = None;
        Ok(out)
    }

    /// Brings two ciphertexts to the lower of their levels (by [`Self::mod_switch_to`]).
    ///
    /// # Errors
    /// As [`Self::mod_switch_to`].
    pub fn align(
        &self,
        a: &Ciphertext,
        b: &Ciphertext,
    ) -> Result<(Ciphertext, Ciphertext), CkksError> {
        let level = a.level().min(b.level());
        Ok((self.mod_switch_to(a, level)?, self.mod_switch_to(b, level)?))
    }

    fn apply_galois(
        &mut self,
        a: &Ciphertext,
        g: u64,
        gk: &GaloisKeys,
    ) -> Result<Ciphertext, CkksError> {
        self.check_ct(a)?;
        check_fp(self.he(), gk.fingerprint())?;
        let key = gk
            .get(g)
            .ok_or(CkksError::MissingGaloisKey { element: g })?;
        let he = self.params.he();
        let n = he.n();
        let k = a.level();
        let perm = key.permutation();
        let mut c0 = RnsPoly::<Eval>::zero(n, k);
        let mut c1 = RnsPoly::<Eval>::zero(n, k);
        crate::galois::apply(perm, &a.c0, &mut c0);
        let mut rc1 = RnsPoly::<Eval>::zero(n, k);
        crate::galois::apply(perm, &a.c1, &mut rc1);
        let ksk: &KeySwitchKey = key.key();
        key_switch(he, ksk, &rc1, &mut c0, &mut c1, &mut self.scratch);
        let ks = keyswitch_noise_bound(he, k);
        Ciphertext {
            fingerprint: he.fingerprint(),
            c0,
            c1,
            scale: a.scale,
            msg_bound: a.msg_bound,
            err_bound: a.err_bound + ks,
            seed: None,
        }
        .within_capacity(he)
    }

    /// Rotates the slots left by `steps` (right for negative `steps`), with the Galois key
    /// of [`rotation_element`]`(N, steps)`.
    ///
    /// # Errors
    /// [`CkksError::MissingGaloisKey`], [`CkksError::ForeignObject`].
    pub fn rotate(
        &mut self,
        a: &Ciphertext,
        steps: i64,
        gk: &GaloisKeys,
    ) -> Result<Ciphertext, CkksError> {
        let g = rotation_element(self.he().n(), steps);
        self.apply_galois(a, g, gk)
    }

    /// Conjugates every slot, with the Galois key of [`conjugation_element`].
    ///
    /// # Errors
    /// [`CkksError::MissingGaloisKey`], [`CkksError::ForeignObject`].
    pub fn conjugate(&mut self, a: &Ciphertext, gk: &GaloisKeys) -> Result<Ciphertext, CkksError> {
        let g = conjugation_element(self.he().n());
        self.apply_galois(a, g, gk)
    }
}
