//! criterion benchmarks of the CKKS operations at the default parameter sets
//! (`CkksParams::default_for(N)`, N = 4096, 8192, 16384), ciphertexts at the top level.
//! Names are `ckks/{op}/{N}/{log q}`.
#![expect(
    missing_docs,
    reason = "criterion_group! generates an undocumented pub fn"
)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use heist_he::ckks::{decrypt, encrypt_pk, CkksParams, Encoder, Evaluator};
use heist_he::galois::rotation_element;
use heist_he::keys::{GaloisKeys, PublicKey, RelinKey, SecretKey};
use rand_core::{RngCore, SeedableRng};

fn ckks(c: &mut Criterion) {
    let mut group = c.benchmark_group("ckks");
    group.sample_size(10);
    for n in [4096usize, 8192, 16384] {
        let params = CkksParams::default_for(n).expect("default parameters");
        let he = params.he();
        let log_q = he.log_q();
        let id = |op: &str| BenchmarkId::new(op, format!("{n}/{log_q}"));
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(0x636b_6b73);
        let sk = SecretKey::generate(he, &mut rng);
        let pk = PublicKey::generate(he, &sk, &mut rng);
        let rlk = RelinKey::generate(he, &sk, &mut rng);
        let gk = GaloisKeys::generate(he, &sk, &[rotation_element(n, 1)], &mut rng)
            .expect("Galois keys");
        let enc = Encoder::new(&params);
        let mut ev = Evaluator::new(&params);
        let top = he.max_level();
        let delta = params.scale();
        let values: Vec<f64> = (0..params.slots())
            .map(|_| (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0)
            .collect();
        let pt = enc.encode(&values, delta, top).expect("encode");
        let ct = encrypt_pk(&params, &pk, &pt, &mut rng).expect("encrypt");
        let ct2 = encrypt_pk(&params, &pk, &pt, &mut rng).expect("encrypt");
        let product = ev.mul_relin(&ct, &ct2, &rlk).expect("multiply");
        let last = ev.mod_switch_to(&ct, 1).expect("mod switch");
        group.bench_function(id("keygen"), |b| {
            b.iter(|| {
                let sk = SecretKey::generate(he, &mut rng);
                let pk = PublicKey::generate(he, &sk, &mut rng);
                (pk, RelinKey::generate(he, &sk, &mut rng))
            })
        });
        group.bench_function(id("encode"), |b| {
            b.iter(|| enc.encode(black_box(&values), delta, top))
        });
        group.bench_function(id("encrypt"), |b| {
            b.iter(|| encrypt_pk(&params, &pk, black_box(&pt), &mut rng))
        });
        group.bench_function(id("decrypt"), |b| {
            b.iter(|| decrypt(&params, &sk, black_box(&ct)))
        });
        group.bench_function(id("decode"), |b| b.iter(|| enc.decode(black_box(&pt))));
        group.bench_function(id("decrypt+decode-last-level"), |b| {
            b.iter(|| decrypt(&params, &sk, black_box(&last)).map(|p| enc.decode(&p)))
        });
        group.bench_function(id("add"), |b| b.iter(|| ev.add(black_box(&ct), &ct2)));
        group.bench_function(id("mul-plain"), |b| {
            b.iter(|| ev.mul_plain(black_box(&ct), &pt))
        });
        group.bench_function(id("mul-scalar"), |b| {
            b.iter(|| ev.mul_integer(black_box(&ct), 7))
        });
        group.bench_function(id("mul+relin"), |b| {
            b.iter(|| ev.mul_relin(black_box(&ct), &ct2, &rlk))
        });
        group.bench_function(id("rescale"), |b| {
            b.iter(|| ev.rescale(black_box(&product)))
        });
        group.bench_function(id("rotate"), |b| {
            b.iter(|| ev.rotate(black_box(&ct), 1, &gk))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    targets = ckks
}
criterion_main!(benches);
