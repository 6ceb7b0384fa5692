//! CKKS batch inference: the trusted client (secret key) and the compute side (public
//! material only).

use alloc::vec;
use alloc::vec::Vec;

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore};

use super::layout::Blocks;
use super::plan::{fresh_error, CkksPlan, CompiledLinear, CompiledOp};
use super::{check_batch, job_seeds, Executor, NnError};
use crate::ckks::fft::Complex;
use crate::ckks::{decrypt, encrypt_sk, Ciphertext, CkksError, Encoder, Evaluator};
use crate::keys::{RelinKey, SecretKey};

/// Ciphertexts per square job.
const SQUARE_CHUNK: usize = 16;

/// The trusted side: holds the secret key, encrypts batches and decrypts scores.
#[derive(Debug)]
pub struct CkksClient {
    plan: CkksPlan,
    encoder: Encoder,
    sk: SecretKey,
}

impl CkksClient {
    /// A client for `plan` with a fresh secret key.
    pub fn new<R: RngCore + CryptoRng>(plan: CkksPlan, rng: &mut R) -> Self {
        let sk = SecretKey::generate(plan.params().he(), rng);
        let encoder = Encoder::new(plan.params());
        Self { plan, encoder, sk }
    }

    /// The plan.
    pub fn plan(&self) -> &CkksPlan {
        &self.plan
    }

    /// The relinearisation key the compute side needs (its only key).
    pub fn relin_key<R: RngCore + CryptoRng>(&self, rng: &mut R) -> RelinKey {
        RelinKey::generate(self.plan.params().he(), &self.sk, rng)
    }

    /// Encrypts up to [`CkksPlan::batch`] inputs (image `b` in slot `b`): one ciphertext
    /// per input position, at the top level and the plan's input scale. The jobs (one per
    /// position) draw from ChaCha20 streams seeded from `rng`.
    ///
    /// # Errors
    /// [`NnError::BatchSize`], [`NnError::InputLength`], [`NnError::InputRange`] for a value
    /// outside `[-input_max_abs, input_max_abs]` (or NaN).
    pub fn encrypt_batch<R: RngCore + CryptoRng, E: Executor>(
        &self,
        images: &[&[f64]],
        rng: &mut R,
        exec: &E,
    ) -> Result<Vec<Ciphertext>, NnError> {
        let len = self.plan.input_len();
        let max = self.plan.input_max_abs();
        // Written positively so that NaN is out of range.
        check_batch(images, self.plan.batch(), len, |v| libm::fabs(*v) <= max)?;
        let seeds = job_seeds(rng, len);
        let params = self.plan.params();
        let level = params.he().max_level();
        let scale = self.plan.input_scale();
        exec.map(len, |pixel| {
            let mut job_rng = ChaCha20Rng::from_seed(seeds[pixel]);
            let slots: Vec<f64> = images.iter().map(|img| img[pixel]).collect();
            let pt = self.encoder.encode(&slots, scale, level)?;
            Ok(encrypt_sk(params, &self.sk, &pt, &mut job_rng)?)
        })
        .into_iter()
        .collect()
    }

    /// Decrypts the score ciphertexts into `images` rows of scores (image `b` from slot `b`).
    ///
    /// # Errors
    /// [`NnError::InputLength`] for a wrong number of ciphertexts, [`NnError::BatchSize`],
    /// [`NnError::Ckks`] for ciphertexts of other parameters.
    pub fn decrypt_scores(
        &self,
        scores: &[Ciphertext],
        images: usize,
    ) -> Result<Vec<Vec<f64>>, NnError> {
        if scores.len() != self.plan.output_len() {
            return Err(NnError::InputLength {
                expected: self.plan.output_len(),
                found: scores.len(),
            });
        }
        if images > self.plan.batch() {
            return Err(NnError::BatchSize {
                given: images,
                max: self.plan.batch(),
            });
        }
        let mut out = vec![vec![0.0; scores.len()]; images];
        for (j, slots) in self.decrypt_slots(scores)?.iter().enumerate() {
            for (row, v) in out.iter_mut().zip(slots) {
                row[j] = v.re;
            }
        }
        Ok(out)
    }

    /// Decrypts every score ciphertext and decodes all its slots, real and imaginary
    /// parts (`out[class][slot]`): what a check of the whole decryption needs, beyond
    /// the released real parts of the used slots.
    ///
    /// # Errors
    /// [`NnError::Ckks`] for ciphertexts of other parameters.
    pub fn decrypt_slots(&self, scores: &[Ciphertext]) -> Result<Vec<Vec<Complex>>, NnError> {
        scores
            .iter()
            .map(|ct| {
                Ok(self
                    .encoder
                    .decode_complex(&decrypt(self.plan.params(), &self.sk, ct)?)?)
            })
            .collect()
    }

    /// The error of decrypted scores measured on their imaginary parts, which carry no
    /// message (every score is real), over the first `images` slots of every ciphertext:
    /// the decryption error `e` of each slot is complex with independent parts of equal
    /// spread, so the imaginary parts sample the error the real parts carry. This is the
    /// measurement OpenFHE's `EXEC_NOISE_ESTIMATION` takes of a run on known inputs.
    ///
    /// # Errors
    /// [`NnError::BatchSize`] for `images` of 0 or above the slots; [`NnError::Ckks`] for
    /// ciphertexts of other parameters.
    pub fn imaginary_noise(
        &self,
        scores: &[Ciphertext],
        images: usize,
    ) -> Result<NoiseSample, NnError> {
        if images == 0 || images > self.plan.batch() {
            return Err(NnError::BatchSize {
                given: images,
                max: self.plan.batch(),
            });
        }
        let (mut sum_sq, mut max, mut count) = (0.0f64, 0.0f64, 0usize);
        for slots in self.decrypt_slots(scores)? {
            for z in slots.iter().take(images) {
                sum_sq += z.im * z.im;
                max = f64::max(max, libm::fabs(z.im));
                count += 1;
            }
        }
        let rms = if count == 0 {
            0.0
        } else {
            libm::sqrt(sum_sq / count as f64)
        };
        Ok(NoiseSample { rms, max, count })
    }

    /// The bound, tracked on the ciphertexts, on `|decrypted score - exact real score|`
    /// over all slots of `scores`: the tracked error over the scale plus the decoder's
    /// floating-point error.
    pub fn error_bound(&self, scores: &[Ciphertext]) -> f64 {
        let n = self.plan.params().he().n();
        scores
            .iter()
            .map(|ct| ct.predicted_error() + crate::ckks::fft_error(n, 1.0, ct.msg_bound()))
            .fold(0.0, f64::max)
    }

    /// The predicted error of fresh input ciphertexts, in slot units.
    pub fn input_error(&self) -> f64 {
        let n = self.plan.params().he().n();
        let scale = self.plan.input_scale();
        fresh_error(n, scale, self.plan.input_max_abs()) / scale
    }
}

/// The spread of a measured decryption error ([`CkksClient::imaginary_noise`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoiseSample {
    /// Root mean square of the measured errors (their standard deviation about 0).
    pub rms: f64,
    /// Largest measured error in magnitude.
    pub max: f64,
    /// Errors measured.
    pub count: usize,
}

/// The compute side: the compiled model and the relinearisation key, nothing secret.
#[derive(Debug, Clone)]
pub struct CkksServer {
    plan: CkksPlan,
    rlk: RelinKey,
}

/// A layer's ciphertexts in blocked layout with their scale and tracked bounds.
struct Batch {
    blocks: Blocks,
    scale: f64,
    msg: Vec<f64>,
    err: Vec<f64>,
}

impl CkksServer {
    /// The compute side for `plan` with the client's relinearisation key.
    ///
    /// # Errors
    /// [`NnError::Ckks`] ([`CkksError::ForeignObject`]) for a key of other parameters.
    pub fn new(plan: CkksPlan, rlk: RelinKey) -> Result<Self, NnError> {
        crate::ckks::check_fp(plan.params().he(), rlk.key().fingerprint())?;
        Ok(Self { plan, rlk })
    }

    /// The plan.
    pub fn plan(&self) -> &CkksPlan {
        &self.plan
    }

    /// Evaluates the network on a batch: [`CkksPlan::input_len`] ciphertexts in, one per
    /// score out. Linear layers run as independent jobs per (polynomial, limb, block of
    /// 64 coefficients) and squares per chunk of ciphertexts, on `exec`.
    ///
    /// # Errors
    /// [`NnError::InputLength`]; [`NnError::InputLevel`] when the inputs are not fresh
    /// ciphertexts of the plan (top level, input scale); [`NnError::InputNoise`] when one
    /// claims a message or error bound above the plan's for a fresh input (the plan's
    /// bounds are tracked from then on, whatever the inputs claim); [`NnError::Ckks`] for
    /// objects of other parameters.
    pub fn evaluate<E: Executor>(
        &self,
        inputs: Vec<Ciphertext>,
        exec: &E,
    ) -> Result<Vec<Ciphertext>, NnError> {
        let he = self.plan.params().he();
        if inputs.len() != self.plan.input_len() {
            return Err(NnError::InputLength {
                expected: self.plan.input_len(),
                found: inputs.len(),
            });
        }
        let max_abs = self.plan.input_max_abs();
        let fresh_err = fresh_error(he.n(), self.plan.input_scale(), max_abs);
        for ct in &inputs {
            crate::ckks::check_fp(he, ct.fingerprint())?;
            let scale_off =
                libm::fabs(ct.scale() - self.plan.input_scale()) > 1e-9 * self.plan.input_scale();
            if ct.level() != he.max_level() || scale_off {
                return Err(NnError::InputLevel {
                    level: ct.level(),
                    scale: ct.scale(),
                });
            }
            // Written so that NaN is refused too.
            let (msg_ok, err_ok) = (ct.msg_bound() <= max_abs, ct.err_bound() <= fresh_err);
            if !(msg_ok && err_ok) {
                return Err(NnError::InputNoise {
                    bound: if msg_ok {
                        ct.err_bound()
                    } else {
                        ct.msg_bound()
                    },
                    max: if msg_ok { fresh_err } else { max_abs },
                });
            }
        }
        let mut batch = Batch::from_cts(he.n(), &inputs, exec);
        drop(inputs);
        // The plan's bounds of a fresh input, never the copies the wire carried.
        batch.msg.fill(max_abs);
        batch.err.fill(fresh_err);
        for op in self.plan.ops() {
            batch = match op {
                CompiledOp::Linear(l) => self.linear(l, &batch, exec)?,
                CompiledOp::Square => self.square(batch, exec)?,
            };
        }
        Ok((0..batch.blocks.rows())
            .map(|r| batch.ct(self, r))
            .collect())
    }

    fn linear<E: Executor>(
        &self,
        l: &CompiledLinear,
        input: &Batch,
        exec: &E,
    ) -> Result<Batch, NnError> {
        let basis = self.plan.params().he().basis();
        let scale = input.scale * libm::ldexp(1.0, l.log2);
        // The bias of row r as an integer at the output scale, as residues per limb.
        let biases: Vec<i128> = l
            .biases
            .iter()
            .map(|bias| {
                let v = libm::round(bias * scale);
                if libm::fabs(v) < libm::ldexp(1.0, 120) {
                    Ok(v as i128)
                } else {
                    Err(NnError::Ckks(CkksError::Overflow { value: v }))
                }
            })
            .collect::<Result<_, _>>()?;
        let residues: Vec<Vec<u64>> = (0..input.blocks.level())
            .map(|i| {
                let q = basis.modulus(i);
                biases
                    .iter()
                    .map(|&b| {
                        let r = q.reduce_u128(b.unsigned_abs());
                        if b < 0 {
                            q.neg(r)
                        } else {
                            r
                        }
                    })
                    .collect()
            })
            .collect();
        let (msg, err) = l.bounds(input.scale, &input.msg, &input.err);
        Ok(Batch {
            blocks: input.blocks.linear(basis, &l.rows, &residues, exec),
            scale,
            msg,
            err,
        })
    }

    fn square<E: Executor>(&self, input: Batch, exec: &E) -> Result<Batch, NnError> {
        let rows = input.blocks.rows();
        let chunks = rows.div_ceil(SQUARE_CHUNK);
        let results = exec.map(chunks, |c| -> Result<Vec<Ciphertext>, CkksError> {
            let mut ev = Evaluator::new(self.plan.params());
            let end = ((c + 1) * SQUARE_CHUNK).min(rows);
            (c * SQUARE_CHUNK..end)
                .map(|r| {
                    let mut sq = ev.square_relin(&input.ct(self, r), &self.rlk)?;
                    ev.rescale_assign(&mut sq)?;
                    Ok(sq)
                })
                .collect()
        });
        drop(input);
        let mut cts = Vec::new();
        for r in results {
            cts.extend(r?);
        }
        Ok(Batch::from_cts(self.plan.params().he().n(), &cts, exec))
    }
}

impl Batch {
    /// Gathers ciphertexts (same level and scale) into the blocked layout.
    fn from_cts<E: Executor>(n: usize, cts: &[Ciphertext], exec: &E) -> Batch {
        let level = cts.first().map_or(1, Ciphertext::level);
        let pairs: Vec<_> = cts.iter().map(|ct| [&ct.c0, &ct.c1]).collect();
        Batch {
            blocks: Blocks::gather(n, level, &pairs, exec),
            scale: cts.first().map_or(1.0, Ciphertext::scale),
            msg: cts.iter().map(Ciphertext::msg_bound).collect(),
            err: cts.iter().map(Ciphertext::err_bound).collect(),
        }
    }

    /// Ciphertext `r`.
    fn ct(&self, server: &CkksServer, r: usize) -> Ciphertext {
        let (c0, c1) = self.blocks.pair(r);
        Ciphertext {
            fingerprint: server.plan.params().he().fingerprint(),
            c0,
            c1,
            scale: self.scale,
            msg_bound: self.msg[r],
            err_bound: self.err[r],
            seed: None,
        }
    }
}
