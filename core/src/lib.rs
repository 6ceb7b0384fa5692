//! # heist-core
//!
//! `no_std` number theory for heist: word-size modular arithmetic with stated
//! input and output ranges, NTT-friendly primes, and the negacyclic
//! number-theoretic transform that every homomorphic operation spends its time in.
#![no_std]
#![deny(missing_docs)]

extern crate alloc;

pub mod arith;
pub mod nn;
pub mod ntt;
pub mod primes;
pub mod rns;
pub mod sample;
