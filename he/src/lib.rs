//! # heist-he
//!
//! `no_std` RLWE homomorphic encryption for heist: BFV and CKKS over an RNS
//! chain, built on [`heist_core`].
//!
//! # Common layer (shared by both schemes)
//!
//! - [`params::HeParams`]: ring degree `N`, chain `q_0..q_{L-1}`, one special prime `P`,
//!   security level checked against the HomomorphicEncryption.org table
//!   ([`params::max_log_q`]; bypassed only by `HeParams::new_insecure_for_tests`, which exists only with the
//!   cargo feature `insecure-params` that the test, bench and fuzz crates enable), the
//!   FNV-1a fingerprint, the [`heist_core::rns::RnsBasis`] (chain then `P`, with NTT
//!   plans), and precomputed constants (`rescale_inv`, `special_inv`, `special_mod`).
//! - Polynomials are [`heist_core::rns::RnsPoly`]`<Coeff | Eval>`; limb `i` is modulo
//!   `q_i`; a polynomial with `k` limbs is at level `k`. The secret, public and evaluation
//!   keys are kept in `Eval` form.
//! - [`keys`]: [`keys::SecretKey`] (ternary, wiped on drop), [`keys::PublicKey`],
//!   [`keys::KeySwitchKey`] (hybrid, one special prime), [`keys::RelinKey`] (`s² → s`),
//!   [`keys::GaloisKeys`]; [`keys::key_switch`] with reusable [`keys::KeySwitchScratch`];
//!   noise formulas [`keys::keyswitch_noise_bound`], [`keys::rounding_bound`].
//! - [`ring`]: the inverse of a ring element per RNS prime ([`ring::invert`]).
//! - [`galois`]: automorphisms `X → X^g` as permutations of evaluation positions.
//! - [`wire`]: the byte format shared by every encoded object (header with magic,
//!   version, kind, fingerprint, body length; bounded readers and writers), and
//!   [`wire::WireError`].
//! - Samplers live in [`heist_core::sample`] (ternary, centred binomial `η = 21`,
//!   uniform mod `p`); randomness is always a caller-supplied `RngCore + CryptoRng`.
//!
//! # CKKS
//!
//! [`ckks`]: [`ckks::CkksParams`] (with [`ckks::CkksParams::for_depth`] choosing a secure
//! chain), [`ckks::Encoder`] (canonical embedding by the special FFT), encryption under the
//! public or secret key (seed-compressed), decryption, [`ckks::Evaluator`] (add, sub,
//! negate, plaintext and scalar products, multiply-accumulate, ct × ct with
//! relinearisation, rescale, level alignment, rotation, conjugation) and a precision
//! readout (measured error against a predicted bound tracked on every ciphertext,
//! [`ckks::precision`]). Linear layers over many ciphertexts use
//! [`ckks::Evaluator::dot_integer`] / [`ckks::Evaluator::dot_real`], which accumulate
//! products in `u128` and reduce once per output residue.
//!
//! # Example
//!
//! ```
//! use heist_he::ckks::{decrypt, encrypt_pk, CkksParams, Encoder, Evaluator};
//! use heist_he::keys::{PublicKey, RelinKey, SecretKey};
//! use rand_chacha::rand_core::SeedableRng;
//!
//! let params = CkksParams::default_for(4096)?;
//! let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
//! let sk = SecretKey::generate(params.he(), &mut rng);
//! let pk = PublicKey::generate(params.he(), &sk, &mut rng);
//! let rlk = RelinKey::generate(params.he(), &sk, &mut rng);
//! let enc = Encoder::new(&params);
//! let mut ev = Evaluator::new(&params);
//! let pt = enc.encode(&[0.5, -1.5], params.scale(), params.he().max_level())?;
//! let ct = encrypt_pk(&params, &pk, &pt, &mut rng)?;
//! let sq = ev.square_relin(&ct, &rlk)?;
//! let sq = ev.rescale(&sq)?;
//! let out = enc.decode(&decrypt(&params, &sk, &sq)?)?;
//! assert!((out[0] - 0.25).abs() <= sq.predicted_error());
//! assert!((out[1] - 2.25).abs() <= sq.predicted_error());
//! # Ok::<(), Box<dyn core::error::Error>>(())
//! ```
#![no_std]
#![deny(missing_docs)]

extern crate alloc;

pub mod bfv;
pub mod ckks;
mod encoding;
pub mod galois;
pub mod keys;
pub mod nn;
pub mod params;
pub mod ring;
pub mod wire;
