//! The negacyclic NTT of heist (`heist`: the kernel chosen at run time; `heist-portable`:
//! the portable kernel) side by side with `tfhe-ntt`, `concrete-ntt` and `fhe-math`:
//! forward transform, exact inverse (the one that returns the forward's input: for
//! `tfhe-ntt`/`concrete-ntt` that is `inv` followed by `normalize`, and their bare `inv`,
//! which leaves a factor `N`, is timed too as `tfhe-ntt-unnormalized`), and the negacyclic
//! polynomial product (two forward transforms, a pointwise product, one inverse).
//!
//! Lengths N = 2^10 … 2^15; primes: the largest `p ≡ 1 mod 2N` below 2^50 and below 2^62
//! (for example 1125899906826241 and 4611686018427322369 at N = 4096). Inputs are random
//! and reduced. Benchmark ids: `ntt-<op>/<library>/<N>/<prime bits>`.
//!
//! `cargo bench -p heist-benches --bench ntt` (about five minutes); a subset with a filter,
//! e.g. `cargo bench -p heist-benches --bench ntt -- 'ntt-forward/.*/4096/'`.
#![expect(
    missing_docs,
    reason = "criterion_group! generates an undocumented pub fn"
)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use heist_core::ntt::{NttPath, NttPlan};
use heist_core::primes::primes_below;
use rand_core::{RngCore, SeedableRng};

/// One library's transforms on one `(N, p)`.
trait Ntt {
    fn forward(&self, a: &mut [u64]);
    fn inverse(&self, a: &mut [u64]);
    /// `a ← a · b mod (X^N + 1, p)`; `b` is clobbered.
    fn polymul(&self, a: &mut [u64], b: &mut [u64]);
}

struct Heist(NttPlan);

impl Ntt for Heist {
    fn forward(&self, a: &mut [u64]) {
        self.0.forward(a);
    }
    fn inverse(&self, a: &mut [u64]) {
        self.0.inverse(a);
    }
    fn polymul(&self, a: &mut [u64], b: &mut [u64]) {
        self.0.negacyclic_mul_in_place(a, b);
    }
}

macro_rules! zama {
    ($name:ident, $plan:ty) => {
        struct $name($plan);

        impl Ntt for $name {
            fn forward(&self, a: &mut [u64]) {
                self.0.fwd(a);
            }
            fn inverse(&self, a: &mut [u64]) {
                self.0.inv(a);
                self.0.normalize(a);
            }
            fn polymul(&self, a: &mut [u64], b: &mut [u64]) {
                self.0.fwd(a);
                self.0.fwd(b);
                self.0.mul_assign_normalize(a, b);
                self.0.inv(a);
            }
        }
    };
}

zama!(Tfhe, tfhe_ntt::prime64::Plan);
zama!(Concrete, concrete_ntt::prime64::Plan);

/// `tfhe-ntt`'s bare inverse, which leaves the result multiplied by `N`.
struct TfheUnnormalized(tfhe_ntt::prime64::Plan);

impl Ntt for TfheUnnormalized {
    fn forward(&self, a: &mut [u64]) {
        self.0.fwd(a);
    }
    fn inverse(&self, a: &mut [u64]) {
        self.0.inv(a);
    }
    fn polymul(&self, a: &mut [u64], b: &mut [u64]) {
        self.0.fwd(a);
        self.0.fwd(b);
        self.0.mul_assign_normalize(a, b);
        self.0.inv(a);
    }
}

struct FheMath {
    op: fhe_math::ntt::NttOperator,
    q: Arc<fhe_math::zq::Modulus>,
}

impl Ntt for FheMath {
    fn forward(&self, a: &mut [u64]) {
        self.op.forward(a);
    }
    fn inverse(&self, a: &mut [u64]) {
        self.op.backward(a);
    }
    fn polymul(&self, a: &mut [u64], b: &mut [u64]) {
        self.op.forward(a);
        self.op.forward(b);
        self.q.mul_vec(a, b);
        self.op.backward(a);
    }
}

fn libraries(n: usize, p: u64) -> Vec<(&'static str, Box<dyn Ntt>)> {
    let q = Arc::new(fhe_math::zq::Modulus::new(p).expect("fhe-math accepts the prime"));
    vec![
        (
            "heist",
            Box::new(Heist(NttPlan::new(n, p).expect("heist plan"))) as Box<dyn Ntt>,
        ),
        (
            "heist-portable",
            Box::new(Heist(
                NttPlan::with_path(n, p, NttPath::Portable).expect("heist plan"),
            )),
        ),
        (
            "tfhe-ntt",
            Box::new(Tfhe(
                tfhe_ntt::prime64::Plan::try_new(n, p).expect("tfhe-ntt plan"),
            )),
        ),
        (
            "tfhe-ntt-unnormalized",
            Box::new(TfheUnnormalized(
                tfhe_ntt::prime64::Plan::try_new(n, p).expect("tfhe-ntt plan"),
            )),
        ),
        (
            "concrete-ntt",
            Box::new(Concrete(
                concrete_ntt::prime64::Plan::try_new(n, p).expect("concrete-ntt plan"),
            )),
        ),
        (
            "fhe-math",
            Box::new(FheMath {
                op: fhe_math::ntt::NttOperator::new(&q, n).expect("fhe-math plan"),
                q,
            }),
        ),
    ]
}

fn ntt(c: &mut Criterion) {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(2024);
    for log_n in 10..=15u32 {
        let n = 1usize << log_n;
        for bits in [50u32, 62] {
            let p = primes_below(1 << bits, 2 * n as u64, 1, &[]).expect("an NTT prime")[0];
            let input: Vec<u64> = (0..n).map(|_| rng.next_u64() % p).collect();
            let other: Vec<u64> = (0..n).map(|_| rng.next_u64() % p).collect();
            let id = format!("{n}/{bits}");
            for (name, lib) in libraries(n, p) {
                // Every library's forward and inverse map [0, p) to [0, p), so repeating
                // them in place keeps feeding valid input.
                let mut a = input.clone();
                if name != "tfhe-ntt-unnormalized" {
                    c.benchmark_group("ntt-forward").bench_with_input(
                        BenchmarkId::new(name, &id),
                        &(),
                        |bch, ()| bch.iter(|| lib.forward(black_box(&mut a))),
                    );
                }
                c.benchmark_group("ntt-inverse").bench_with_input(
                    BenchmarkId::new(name, &id),
                    &(),
                    |bch, ()| bch.iter(|| lib.inverse(black_box(&mut a))),
                );
                if name != "tfhe-ntt-unnormalized" {
                    let (mut x, mut y) = (input.clone(), other.clone());
                    c.benchmark_group("ntt-polymul").bench_with_input(
                        BenchmarkId::new(name, &id),
                        &(),
                        |bch, ()| {
                            bch.iter(|| {
                                x.copy_from_slice(&input);
                                y.copy_from_slice(&other);
                                lib.polymul(black_box(&mut x), black_box(&mut y));
                            })
                        },
                    );
                }
            }
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(20);
    targets = ntt
}
criterion_main!(benches);
