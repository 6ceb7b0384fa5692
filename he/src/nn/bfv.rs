//! BFV batch inference: the integer network of a [`QuantizedModel`] evaluated exactly.
//!
//! See [`BfvPlan`] for the plaintext primes, the noise bounds and the choice of parameters.

use alloc::vec;
use alloc::vec::Vec;

use core::ops::Range;

use heist_core::nn::{Network, Op, QuantizedModel};
use heist_core::primes::ntt_primes;
use heist_core::rns::{Eval, RnsPoly};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore};

use super::kernel::CompiledRow;
use super::layout::Blocks;
use super::{check_batch, job_seeds, Executor, NnError};
use crate::bfv::noise::{budget_bits, NoiseModel};
use crate::bfv::params::{chain_for_noise, AUX_PRIME_BITS, MAX_PLAIN_BITS};
use crate::bfv::{
    decrypt_measured, encrypt_sk, relinearize, tensor, BatchEncoder, BfvParams, Ciphertext,
};
use crate::keys::{KeySwitchScratch, RelinKey, SecretKey};
use crate::params::{max_log_q, primes_for_sizes, SecurityLevel};

/// The most plaintext primes a plan uses.
pub const MAX_PLAIN_PRIMES: usize = 4;
/// Ciphertexts per square or relinearisation job.
const SQUARE_CHUNK: usize = 8;
/// Square jobs per wave of an in-place square layer.
const SQUARE_JOBS: usize = 8;
/// Products per group of a fused square and linear layer: the products of one group
/// exist at a time, beside the accumulated outputs.
const GROUP: usize = 64;

/// A linear map of the integer network in the kernel's form.
#[derive(Debug, Clone, PartialEq)]
struct Linear {
    rows: Vec<CompiledRow>,
    biases: Vec<i128>,
}

/// One step of the evaluation.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    /// A linear map.
    Linear(Linear),
    /// Square and relinearise every value.
    Square,
    /// Square every value *without* relinearising, apply the linear map to the
    /// three-part products, and relinearise its outputs only: one key switch per output
    /// instead of one per square. The columns of the map are also kept split into groups
    /// of [`GROUP`] inputs, so the products can be made and consumed a group at a time.
    SquareLinear(Linear, Vec<Vec<CompiledRow>>),
}

/// `Σ |w| v_i` over a row.
fn row_sum(row: &CompiledRow, v: &[f64]) -> f64 {
    row.magnitudes().map(|(i, w)| f64::from(w) * v[i]).sum()
}

/// The noise bounds after `step` given those before it, as the server tracks them (the
/// rules of [`crate::bfv::noise`]: a linear row multiplies by `Σ |w|` and adds the
/// rounding of its bias plaintext; a product before relinearisation is
/// [`NoiseModel::tensor`], a relinearisation adds [`NoiseModel::key_switch`]).
fn step_noise(model: &NoiseModel, step: &Step, v: &[f64]) -> Vec<f64> {
    match step {
        Step::Linear(l) => l
            .rows
            .iter()
            .map(|r| model.floor(model.add_plain(row_sum(r, v))))
            .collect(),
        Step::Square => v
            .iter()
            .map(|&x| model.floor(model.mul_relin(x, x)))
            .collect(),
        Step::SquareLinear(l, _) => {
            let t: Vec<f64> = v.iter().map(|&x| model.tensor(x, x)).collect();
            l.rows
                .iter()
                .map(|r| model.floor(model.key_switch(model.add_plain(row_sum(r, &t)))))
                .collect()
        }
    }
}

/// The largest noise bound of the scores for fresh secret-key inputs.
fn walk(steps: &[Step], input_len: usize, model: &NoiseModel) -> f64 {
    let mut v = vec![model.fresh_sk(); input_len];
    for step in steps {
        v = step_noise(model, step, &v);
    }
    v.into_iter().fold(0.0, f64::max)
}

/// The integer network as evaluation steps: every square followed by a linear map is
/// fused with it.
fn compile(network: &Network<i128>) -> Result<Vec<Step>, NnError> {
    let mut steps = Vec::new();
    let mut pending_square = false;
    for (op, o) in network.ops().iter().enumerate() {
        match o {
            Op::Square => {
                if pending_square {
                    steps.push(Step::Square);
                }
                pending_square = true;
            }
            Op::Linear(map) => {
                let linear = Linear {
                    rows: map
                        .rows()
                        .iter()
                        .map(|row| CompiledRow::from_terms(op, row.terms().iter().copied()))
                        .collect::<Result<_, _>>()?,
                    biases: map.rows().iter().map(|row| row.bias()).collect(),
                };
                if pending_square {
                    let groups = (0..map.input_len())
                        .step_by(GROUP)
                        .map(|g0| {
                            let cols = g0..(g0 + GROUP).min(map.input_len());
                            linear
                                .rows
                                .iter()
                                .map(|r| r.restrict(cols.clone()))
                                .collect()
                        })
                        .collect();
                    steps.push(Step::SquareLinear(linear, groups));
                } else {
                    steps.push(Step::Linear(linear));
                }
                pending_square = false;
            }
        }
    }
    if pending_square {
        steps.push(Step::Square);
    }
    Ok(steps)
}

/// The parameters chosen at one degree.
struct Candidate {
    n: usize,
    plain: Vec<u64>,
    count: usize,
    bits: u32,
    cost: u64,
}

/// The `k` largest NTT primes of the smallest size whose product is at least `needed`
/// and below `2^127`, if any.
fn plain_primes(n: usize, k: usize, needed: u128) -> Option<Vec<u64>> {
    let needed_bits = 128 - needed.leading_zeros();
    // Sizes below log2(needed)/k cannot cover it; NTT primes need 2^(b-1) > 2N.
    let min_bits = (needed_bits.saturating_sub(1) / k as u32).max(n.trailing_zeros() + 2);
    (min_bits..=MAX_PLAIN_BITS).find_map(|b| {
        let ts = ntt_primes(b, 2 * n as u64, k, &[]).ok()?;
        let product = ts
            .iter()
            .try_fold(1u128, |acc, &t| acc.checked_mul(u128::from(t)))?;
        (product >= needed && product < 1 << 127).then_some(ts)
    })
}

/// The cheapest candidate at degree `n` within `budget` bits of `log Q` (`None`:
/// unchecked).
fn candidate(
    n: usize,
    steps: &[Step],
    input_len: usize,
    needed: u128,
    budget: Option<u32>,
) -> Option<Candidate> {
    let mut best: Option<Candidate> = None;
    for k in 1..=MAX_PLAIN_PRIMES {
        let Some(plain) = plain_primes(n, k, needed) else {
            continue;
        };
        let t_max = plain.iter().copied().max().unwrap_or(0);
        let (count, bits) = chain_for_noise(n, t_max, |m| walk(steps, input_len, m));
        let total = (count as u32 + 1) * bits;
        if budget.is_some_and(|b| total > b) || total > 1000 {
            continue;
        }
        // As BfvParams sizes its auxiliary basis.
        let aux_bits = (64 - t_max.leading_zeros()) + n.trailing_zeros() + count as u32 * bits;
        let aux = aux_bits as usize / (AUX_PRIME_BITS as usize - 1) + 1;
        let cost = (k * (count + aux)) as u64 * u64::from(n.trailing_zeros());
        if best.as_ref().is_none_or(|b| cost < b.cost) {
            best = Some(Candidate {
                n,
                plain,
                count,
                bits,
                cost,
            });
        }
    }
    best
}

/// A [`QuantizedModel`] compiled for exact BFV batch inference, with its parameters.
///
/// # Plaintext primes and CRT
///
/// Every value of the integer network is bounded by `B` ([`QuantizedModel::max_abs_bound`],
/// partial sums included), so its residue modulo any `T >= 2B + 1` determines it. When no
/// single plaintext prime is that large, the plan takes `k` primes `t_0, …, t_{k-1}`
/// (`≡ 1 mod 2N`, at most 60 bits) with `T = Π t_j >= 2B + 1`, evaluates the same network
/// once per prime on the same ring, chain and keys ([`BfvParams::with_plain_modulus`]),
/// and the client recombines the decrypted residues by CRT (Garner's mixed radix, exact in
/// `u128`; `T < 2^127`) into the centred integer scores: bit for bit those of
/// [`QuantizedModel::infer`].
///
/// # Noise
///
/// The plan walks the network with the worst-case noise bounds of [`crate::bfv::noise`]
/// along the schedule the server runs (fresh secret-key inputs; a linear row multiplies
/// the noise by `Σ |w|` and adds that of a plaintext; a product adds
/// [`NoiseModel::tensor`] and a relinearisation [`NoiseModel::key_switch`]; a square
/// followed by a linear map is relinearised after the map) and takes the smallest chain
/// that leaves at least one bit of budget on every score for the largest prime. No
/// heuristic enters: decryption of every score is correct for every input in range. The
/// server tracks the same bounds on the ciphertexts.
///
/// # Choice of parameters
///
/// For every secure degree `N` (at least 2048) and number of primes `k`, the plan takes
/// the `k` largest primes of the smallest size whose product covers `2B + 1`, the chain
/// the noise walk needs, and the auxiliary basis of the multiplication. It keeps the
/// candidate of least predicted work per image, `k · (chain + auxiliary primes) · log2 N`
/// (every job is an NTT-dominated pass over all primes of one ciphertext, and a
/// ciphertext carries `N` images).
///
/// # Roles
///
/// [`BfvClient`] holds the secret key: it encrypts a batch once per prime and decrypts and
/// recombines the scores. [`BfvServer`] holds the plan and the relinearisation key only;
/// it evaluates the ciphertexts of one prime at a time, so a host can stream the primes.
#[derive(Debug, Clone)]
pub struct BfvPlan {
    /// One parameter set per plaintext prime, on one ring and chain.
    params: Vec<BfvParams>,
    steps: Vec<Step>,
    input_len: usize,
    output_len: usize,
    input_bound: u64,
    needed: u128,
    final_noise: f64,
}

impl BfvPlan {
    /// Compiles `model` and chooses secure parameters at `level` (see the type
    /// documentation).
    ///
    /// # Errors
    /// [`NnError::TooLarge`] for weights the kernel cannot take (`Σ |w| > 2^32` in a row);
    /// [`NnError::NoExactParameters`] when no secure degree up to 32768 fits.
    pub fn new(model: &QuantizedModel, level: SecurityLevel) -> Result<Self, NnError> {
        let steps = compile(model.network())?;
        let input_len = model.network().input_len();
        let needed = model.min_plaintext_modulus();
        let mut best: Option<Candidate> = None;
        let mut n = 2048;
        while n <= 32768 {
            let budget = max_log_q(n, level).unwrap_or(0);
            if let Some(c) = candidate(n, &steps, input_len, needed, Some(budget)) {
                if best.as_ref().is_none_or(|b| c.cost < b.cost) {
                    best = Some(c);
                }
            }
            n *= 2;
        }
        let c = best.ok_or(NnError::NoExactParameters {
            plaintext_bits: libm::log2(needed as f64),
        })?;
        Self::build(model, steps, &c, Some(level))
    }

    /// As [`Self::new`] at a fixed degree `n` without the security check (fast tests).
    ///
    /// # Errors
    /// As [`Self::new`].
    #[cfg(any(test, feature = "insecure-params"))]
    pub fn new_insecure_for_tests(model: &QuantizedModel, n: usize) -> Result<Self, NnError> {
        let steps = compile(model.network())?;
        let needed = model.min_plaintext_modulus();
        let c = candidate(n, &steps, model.network().input_len(), needed, None).ok_or(
            NnError::NoExactParameters {
                plaintext_bits: libm::log2(needed as f64),
            },
        )?;
        Self::build(model, steps, &c, None)
    }

    fn build(
        model: &QuantizedModel,
        steps: Vec<Step>,
        c: &Candidate,
        level: Option<SecurityLevel>,
    ) -> Result<Self, NnError> {
        let mut primes = primes_for_sizes(c.n, &vec![c.bits; c.count + 1], &c.plain)?;
        // Equal sizes drawn downwards: the first is the largest, the special prime.
        let special = primes.remove(0);
        let first = match level {
            Some(level) => BfvParams::new(c.n, &primes, special, c.plain[0], level)?,
            None => BfvParams::unchecked(c.n, &primes, special, c.plain[0])?,
        };
        let mut params = vec![first];
        for &t in &c.plain[1..] {
            params.push(params[0].with_plain_modulus(t)?);
        }
        let input_len = model.network().input_len();
        // The search bounded Q from below; check the walk with the actual primes.
        let final_noise = params
            .iter()
            .map(|p| walk(&steps, input_len, p.noise_model()))
            .fold(0.0, f64::max);
        if budget_bits(final_noise) < 1.0 {
            return Err(NnError::NoExactParameters {
                plaintext_bits: libm::log2(model.min_plaintext_modulus() as f64),
            });
        }
        Ok(Self {
            params,
            steps,
            input_len,
            output_len: model.network().output_len(),
            input_bound: model.input_bound(),
            needed: model.min_plaintext_modulus(),
            final_noise,
        })
    }

    /// The parameter sets, one per plaintext prime (same ring, chain and keys).
    pub fn params(&self) -> &[BfvParams] {
        &self.params
    }

    /// The plaintext primes `t_j`.
    pub fn plain_moduli(&self) -> Vec<u64> {
        self.params
            .iter()
            .map(|p| p.plain_modulus().value())
            .collect()
    }

    /// `log2 Π t_j`, the plaintext bits of the CRT.
    pub fn plaintext_bits(&self) -> f64 {
        self.plain_moduli()
            .iter()
            .map(|&t| libm::log2(t as f64))
            .sum()
    }

    /// `2B + 1`, the smallest plaintext modulus the model needs.
    pub fn needed_modulus(&self) -> u128 {
        self.needed
    }

    /// The ring degree `N`.
    pub fn n(&self) -> usize {
        self.params[0].n()
    }

    /// Images per batch: one per slot, `N`.
    pub fn batch(&self) -> usize {
        self.n()
    }

    /// Number of inputs (one ciphertext each, per prime).
    pub fn input_len(&self) -> usize {
        self.input_len
    }

    /// Number of scores (one ciphertext each, per prime).
    pub fn output_len(&self) -> usize {
        self.output_len
    }

    /// Largest accepted magnitude of a quantised input.
    pub fn input_bound(&self) -> u64 {
        self.input_bound
    }

    /// The noise budget, in bits, the worst-case bounds guarantee on every score (the
    /// least over the primes); at least one.
    pub fn noise_budget(&self) -> f64 {
        budget_bits(self.final_noise)
    }

    /// The index of the prime whose parameters have fingerprint `fp`.
    fn prime_of(&self, fp: u64) -> Option<usize> {
        self.params.iter().position(|p| p.fingerprint() == fp)
    }
}

/// The trusted side: holds the secret key, encrypts batches and decrypts scores.
#[derive(Debug)]
pub struct BfvClient {
    plan: BfvPlan,
    encoders: Vec<BatchEncoder>,
    sk: SecretKey,
}

impl BfvClient {
    /// A client for `plan` with a fresh secret key.
    ///
    /// # Errors
    /// [`NnError::Bfv`] if a batch encoder cannot be built (not for a plan's primes).
    pub fn new<R: RngCore + CryptoRng>(plan: BfvPlan, rng: &mut R) -> Result<Self, NnError> {
        let sk = SecretKey::generate(plan.params[0].he(), rng);
        let encoders = plan
            .plain_moduli()
            .into_iter()
            .map(|t| BatchEncoder::new(plan.n(), t))
            .collect::<Result<_, _>>()?;
        Ok(Self { plan, encoders, sk })
    }

    /// The plan.
    pub fn plan(&self) -> &BfvPlan {
        &self.plan
    }

    /// The relinearisation key the compute side needs (its only key; it serves every
    /// prime).
    pub fn relin_key<R: RngCore + CryptoRng>(&self, rng: &mut R) -> RelinKey {
        RelinKey::generate(self.plan.params[0].he(), &self.sk, rng)
    }

    /// Encrypts up to [`BfvPlan::batch`] quantised inputs (image `b` in slot `b`) modulo
    /// plaintext prime `prime`: one seed-compressible ciphertext per input position. The
    /// jobs (one per position) draw from ChaCha20 streams seeded from `rng`.
    ///
    /// # Errors
    /// [`NnError::BatchSize`], [`NnError::InputLength`] (also for a prime index out of
    /// range), [`NnError::InputRange`] for a value above [`BfvPlan::input_bound`] in
    /// magnitude.
    pub fn encrypt_batch<R: RngCore + CryptoRng, E: Executor>(
        &self,
        images: &[&[i64]],
        prime: usize,
        rng: &mut R,
        exec: &E,
    ) -> Result<Vec<Ciphertext>, NnError> {
        let (Some(params), Some(encoder)) = (self.plan.params.get(prime), self.encoders.get(prime))
        else {
            return Err(NnError::InputLength {
                expected: self.plan.params.len(),
                found: prime,
            });
        };
        let len = self.plan.input_len();
        let bound = self.plan.input_bound;
        check_batch(images, self.plan.batch(), len, |v| {
            v.unsigned_abs() <= bound
        })?;
        let seeds = job_seeds(rng, len);
        let t = params.plain_modulus();
        exec.map(len, |pixel| {
            let mut job_rng = ChaCha20Rng::from_seed(seeds[pixel]);
            let slots: Vec<u64> = images.iter().map(|img| t.from_i64(img[pixel])).collect();
            let pt = encoder.encode_u64(&slots)?;
            Ok(encrypt_sk(params, &self.sk, &pt, &mut job_rng)?)
        })
        .into_iter()
        .collect()
    }

    /// Decrypts the scores of every prime (`scores[j]`: the score ciphertexts of prime
    /// `j`) and recombines them by CRT into `images` rows of centred integer scores.
    ///
    /// Every ciphertext's noise is measured with the key first: one with less budget than
    /// the plan's worst-case walk guarantees every honest score ([`BfvPlan::noise_budget`])
    /// is refused. No honest evaluation gives one, and a crafted one near the rounding
    /// boundary would otherwise round one way or the other depending on the key.
    ///
    /// # Errors
    /// [`NnError::ReplyNoise`] for such a ciphertext,
    /// [`NnError::InputLength`] for a wrong number of primes or ciphertexts,
    /// [`NnError::BatchSize`], [`NnError::Bfv`] for ciphertexts of other parameters.
    pub fn decrypt_scores(
        &self,
        scores: &[Vec<Ciphertext>],
        images: usize,
    ) -> Result<Vec<Vec<i128>>, NnError> {
        let k = self.plan.params.len();
        if scores.len() != k {
            return Err(NnError::InputLength {
                expected: k,
                found: scores.len(),
            });
        }
        if images > self.plan.batch() {
            return Err(NnError::BatchSize {
                given: images,
                max: self.plan.batch(),
            });
        }
        let classes = self.plan.output_len();
        // residues[class][prime][slot]
        let mut residues = vec![Vec::with_capacity(k); classes];
        for (j, cts) in scores.iter().enumerate() {
            if cts.len() != classes {
                return Err(NnError::InputLength {
                    expected: classes,
                    found: cts.len(),
                });
            }
            for (class, ct) in cts.iter().enumerate() {
                let (pt, budget) = decrypt_measured(&self.plan.params[j], &self.sk, ct)?;
                if budget.is_nan() || budget < self.plan.noise_budget() {
                    return Err(NnError::ReplyNoise {
                        prime: j,
                        class,
                        budget,
                        guaranteed: self.plan.noise_budget(),
                    });
                }
                residues[class].push(self.encoders[j].decode_u64(&pt)?);
            }
        }
        let crt = Crt::new(&self.plan.plain_moduli());
        let mut out = vec![vec![0i128; classes]; images];
        let mut r = vec![0u64; k];
        for (class, res) in residues.iter().enumerate() {
            for (b, row) in out.iter_mut().enumerate() {
                for (rj, rs) in r.iter_mut().zip(res) {
                    *rj = rs[b];
                }
                row[class] = crt.centred(&r);
            }
        }
        Ok(out)
    }

    /// The noise budget of `ct` measured with the secret key (see
    /// [`crate::bfv::noise_budget`]).
    ///
    /// # Errors
    /// [`NnError::Bfv`] for a ciphertext of no prime of the plan.
    pub fn noise_budget(&self, ct: &Ciphertext) -> Result<f64, NnError> {
        let j = self.plan.prime_of(ct.fingerprint()).ok_or(NnError::Bfv(
            crate::bfv::BfvError::ForeignObject {
                expected: self.plan.params[0].fingerprint(),
                found: ct.fingerprint(),
            },
        ))?;
        Ok(crate::bfv::noise_budget(
            &self.plan.params[j],
            &self.sk,
            ct,
        )?)
    }
}

/// Garner's mixed-radix CRT for pairwise distinct primes with product below `2^127`.
struct Crt {
    moduli: Vec<heist_core::arith::Modulus>,
    /// `(t_0 ⋯ t_{j-1})^{-1} mod t_j`.
    inv: Vec<u64>,
    /// `Π t_j`.
    product: u128,
}

impl Crt {
    fn new(primes: &[u64]) -> Self {
        let moduli: Vec<_> = primes
            .iter()
            .filter_map(|&t| heist_core::arith::Modulus::new(t).ok())
            .collect();
        let mut inv = Vec::with_capacity(moduli.len());
        let mut product = 1u128;
        for t in &moduli {
            // Distinct primes: the product is invertible modulo t.
            inv.push(t.inv(t.reduce_u128(product)).unwrap_or(0));
            product *= u128::from(t.value());
        }
        Self {
            moduli,
            inv,
            product,
        }
    }

    /// The integer in `(-T/2, T/2]` with residues `r_j` modulo `t_j`.
    ///
    /// # Ranges
    /// `r_j` in `[0, t_j)`, `T < 2^127` (the plan's primes) → exact.
    fn centred(&self, r: &[u64]) -> i128 {
        let mut x = 0u128;
        let mut m = 1u128;
        for ((t, &inv), &rj) in self.moduli.iter().zip(&self.inv).zip(r) {
            let a = t.mul(t.sub(rj, t.reduce_u128(x)), inv);
            // x < m and a < t_j: x + a·m < m·t_j <= T < 2^127.
            x += u128::from(a) * m;
            m *= u128::from(t.value());
        }
        if x > self.product / 2 {
            x as i128 - self.product as i128
        } else {
            x as i128
        }
    }
}

/// The compute side: the compiled model and the relinearisation key, nothing secret.
#[derive(Debug, Clone)]
pub struct BfvServer {
    plan: BfvPlan,
    rlk: RelinKey,
}

impl BfvServer {
    /// The compute side for `plan` with the client's relinearisation key.
    ///
    /// # Errors
    /// [`NnError::Bfv`] ([`crate::bfv::BfvError::ForeignObject`]) for a key of other
    /// parameters.
    pub fn new(plan: BfvPlan, rlk: RelinKey) -> Result<Self, NnError> {
        let expected = plan.params[0].he().fingerprint();
        if rlk.key().fingerprint() != expected {
            return Err(NnError::Bfv(crate::bfv::BfvError::ForeignObject {
                expected,
                found: rlk.key().fingerprint(),
            }));
        }
        Ok(Self { plan, rlk })
    }

    /// The plan.
    pub fn plan(&self) -> &BfvPlan {
        &self.plan
    }

    /// Evaluates the network on the ciphertexts of one plaintext prime (told by their
    /// fingerprint): [`BfvPlan::input_len`] ciphertexts in, one per score out. Linear
    /// layers run as independent jobs per (polynomial, limb, block of coefficients) and
    /// squares per chunk of ciphertexts, on `exec`.
    ///
    /// # Errors
    /// [`NnError::InputLength`]; [`NnError::Bfv`] for ciphertexts of no prime of the plan
    /// or of different primes; [`NnError::InputNoise`] for an input whose tracked noise
    /// exceeds that of a fresh secret-key encryption, which the plan assumes.
    pub fn evaluate<E: Executor>(
        &self,
        inputs: Vec<Ciphertext>,
        exec: &E,
    ) -> Result<Vec<Ciphertext>, NnError> {
        if inputs.len() != self.plan.input_len() {
            return Err(NnError::InputLength {
                expected: self.plan.input_len(),
                found: inputs.len(),
            });
        }
        let fp = inputs[0].fingerprint();
        let foreign = |found| {
            NnError::Bfv(crate::bfv::BfvError::ForeignObject {
                expected: fp,
                found,
            })
        };
        let j = self.plan.prime_of(fp).ok_or(foreign(fp))?;
        let params = &self.plan.params[j];
        let model = params.noise_model();
        for ct in &inputs {
            if ct.fingerprint() != fp {
                return Err(foreign(ct.fingerprint()));
            }
            // Written so that NaN is refused too.
            if ct.noise_bound().is_nan() || ct.noise_bound() > model.fresh_sk() {
                return Err(NnError::InputNoise {
                    bound: ct.noise_bound(),
                    max: model.fresh_sk(),
                });
            }
        }
        let he = params.he();
        let (n, level, basis) = (he.n(), he.max_level(), he.basis());
        let mut noise: Vec<f64> = inputs.iter().map(Ciphertext::noise_bound).collect();
        let pairs: Vec<[&RnsPoly<Eval>; 2]> = inputs.iter().map(|ct| [ct.c0(), ct.c1()]).collect();
        // The layer so far; `None`: still the inputs, read in place by the first layer.
        let mut layer: Option<Blocks> = None;
        let mut steps = self.plan.steps.iter().peekable();
        while let Some(step) = steps.next() {
            let mut next_noise = step_noise(model, step, &noise);
            layer = Some(match step {
                Step::Linear(a) => {
                    let residues = bias_residues(params, &a.biases);
                    let source = match &layer {
                        Some(b) => Source::Layer(b),
                        None => Source::Inputs(&pairs),
                    };
                    match steps.next_if(|s| matches!(s, Step::SquareLinear(..))) {
                        // Linear, square, linear: the first map's outputs are made a
                        // group at a time and consumed at once.
                        Some(fused @ Step::SquareLinear(b, groups)) => {
                            next_noise = step_noise(model, fused, &next_noise);
                            let make = |rows: Range<usize>| {
                                let bias: Vec<Vec<u64>> =
                                    residues.iter().map(|r| r[rows.clone()].to_vec()).collect();
                                source.linear(n, level, basis, &a.rows[rows], &bias, exec)
                            };
                            self.square_linear(params, a.rows.len(), make, b, groups, exec)?
                        }
                        _ => source.linear(n, level, basis, &a.rows, &residues, exec),
                    }
                }
                Step::SquareLinear(b, groups) => {
                    let whole = layer
                        .take()
                        .unwrap_or_else(|| Blocks::gather(n, level, &pairs, exec));
                    let rows = whole.rows();
                    let make = |r: Range<usize>| whole.select(r);
                    self.square_linear(params, rows, make, b, groups, exec)?
                }
                Step::Square => {
                    let mut b = layer
                        .take()
                        .unwrap_or_else(|| Blocks::gather(n, level, &pairs, exec));
                    b.map_in_place(
                        (SQUARE_CHUNK, SQUARE_CHUNK * SQUARE_JOBS),
                        exec,
                        KeySwitchScratch::default,
                        |scratch, b, r| {
                            let (c0, c1) = b.pair(r);
                            let parts = tensor(params, [&c0, &c1], None);
                            let (c0, c1) = relinearize(params, parts, &self.rlk, scratch);
                            Ok::<_, NnError>(vec![c0, c1])
                        },
                    )?;
                    b
                }
            });
            noise = next_noise;
        }
        // A network without operations: the scores are the inputs.
        let layer = layer.unwrap_or_else(|| Blocks::gather(n, level, &pairs, exec));
        drop(pairs);
        drop(inputs);
        Ok((0..layer.rows())
            .map(|r| {
                let (c0, c1) = layer.pair(r);
                Ciphertext::from_parts(params, c0, c1, noise[r])
            })
            .collect())
    }

    /// The fused step [`Step::SquareLinear`] on `rows` values, whose layout `make(range)`
    /// gives a group at a time: each group is squared without relinearisation and its
    /// columns of the map `b` (`groups[g]`) are accumulated into the three-part outputs,
    /// which are relinearised at the end. The bias of `b` is added with the first group.
    fn square_linear<E: Executor>(
        &self,
        params: &BfvParams,
        rows: usize,
        make: impl Fn(Range<usize>) -> Blocks,
        b: &Linear,
        groups: &[Vec<CompiledRow>],
        exec: &E,
    ) -> Result<Blocks, NnError> {
        let he = params.he();
        let (n, level, basis) = (he.n(), he.max_level(), he.basis());
        let residues = bias_residues(params, &b.biases);
        let mut acc: Option<Blocks> = None;
        for (g, cols) in groups.iter().enumerate() {
            let range = g * GROUP..((g + 1) * GROUP).min(rows);
            let group = make(range.clone());
            let products = group.map_rows(
                0..range.len(),
                SQUARE_CHUNK,
                exec,
                || (),
                |(), layer, r| {
                    let (c0, c1) = layer.pair(r);
                    Ok::<_, NnError>(tensor(params, [&c0, &c1], None))
                },
            )?;
            drop(group);
            let refs: Vec<[&RnsPoly<Eval>; 3]> =
                products.iter().map(|[a, b, c]| [a, b, c]).collect();
            let squared = Blocks::gather(n, level, &refs, exec);
            drop(refs);
            drop(products);
            match &mut acc {
                None => acc = Some(squared.linear(basis, cols, &residues, exec)),
                Some(acc) => acc.add_linear(&squared, basis, cols, &[], exec),
            }
        }
        let acc = acc.ok_or(NnError::InputLength {
            expected: 1,
            found: 0,
        })?;
        let relinearised = acc.map_rows(
            0..acc.rows(),
            SQUARE_CHUNK,
            exec,
            KeySwitchScratch::default,
            |scratch, layer, r| {
                Ok::<_, NnError>(relinearize(params, layer.triple(r), &self.rlk, scratch))
            },
        )?;
        drop(acc);
        let refs: Vec<[&RnsPoly<Eval>; 2]> = relinearised.iter().map(|(a, b)| [a, b]).collect();
        Ok(Blocks::gather(n, level, &refs, exec))
    }
}

/// Where a linear layer reads its inputs.
enum Source<'a> {
    /// The input ciphertexts, in place.
    Inputs(&'a [[&'a RnsPoly<Eval>; 2]]),
    /// A layer in blocked layout.
    Layer(&'a Blocks),
}

impl Source<'_> {
    /// The linear layer of `rows` (biases as residues `[limb][row]`).
    fn linear<E: Executor>(
        &self,
        n: usize,
        level: usize,
        basis: &heist_core::rns::RnsBasis,
        rows: &[CompiledRow],
        bias: &[Vec<u64>],
        exec: &E,
    ) -> Blocks {
        match self {
            Self::Inputs(cts) => Blocks::linear_from(n, level, cts, basis, rows, bias, exec),
            Self::Layer(b) => b.linear(basis, rows, bias, exec),
        }
    }
}

/// The residues `[limb][row]` of `round(Q·[b]_t/t)` for the integer biases `b`.
fn bias_residues(params: &BfvParams, biases: &[i128]) -> Vec<Vec<u64>> {
    let t = params.plain_modulus().value();
    let per_row: Vec<Vec<u64>> = biases
        .iter()
        .map(|&b| {
            // rem_euclid by t < 2^60 is in [0, t).
            let m = b.rem_euclid(i128::from(t)) as u64;
            crate::bfv::scaled_constant(params, m)
        })
        .collect();
    (0..params.chain_moduli().len())
        .map(|limb| per_row.iter().map(|r| r[limb]).collect())
        .collect()
}
