//! # heist-he
//!
//! `no_std` RLWE homomorphic encryption for heist: BFV and CKKS over an RNS
//! chain, built on [`heist_core`].
//!
//! # Common layer (shared by both schemes)
//!
//! - [`params::HeParams`]: ring degree `N`, chain `q_0..q_{L-1}`, one special prime `P`,
//!   security level checked against the HomomorphicEncryption.org table
//!   ([`params::max_log_q`]; bypassed only by `HeParams::new_insecure_for_tests`), the
//!   FNV-1a fingerprint, the [`heist_core::rns::RnsBasis`] (chain then `P`, with NTT
//!   plans), and precomputed constants (`rescale_inv`, `special_inv`, `special_mod`).
//! - Polynomials are [`heist_core::rns::RnsPoly`]`<Coeff | Eval>`; limb `i` is modulo
//!   `q_i`; a polynomial with `k` limbs is at level `k`. The secret, public and evaluation
//!   keys are kept in `Eval` form.
//! - [`keys`]: [`keys::SecretKey`] (ternary, wiped on drop), [`keys::PublicKey`],
//!   [`keys::KeySwitchKey`] (hybrid, one special prime), [`keys::RelinKey`] (`s² → s`),
//!   [`keys::GaloisKeys`]; [`keys::key_switch`] with reusable [`keys::KeySwitchScratch`];
//!   noise formulas [`keys::keyswitch_noise_bound`], [`keys::rounding_bound`].
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
//! readout (measured error against a predicted bound tracked on every ciphertext).
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
pub mod wire;
