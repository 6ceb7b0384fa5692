//! criterion benchmarks of BFV at the default sets (`BfvParams::default_for`, SEAL's prime
//! sizes, `t = 65537`): keygen, encode/decode, encrypt, decrypt (and decrypt with the noise
//! measurement the trusted party checks every reply with), add, plaintext and scalar
//! products, a 16-term linear combination, mul + relinearise, rotation.
//! Ids are `bfv/op/n/log_q`.
#![expect(
    missing_docs,
    reason = "criterion_group! generates an undocumented pub fn"
)]

use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use heist_he::bfv::{
    decrypt, decrypt_measured, encrypt_pk, rotation_galois_element, BatchEncoder, BfvParams,
    Evaluator,
};
use heist_he::keys::{GaloisKeys, PublicKey, RelinKey, SecretKey};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

fn bfv(c: &mut Criterion) {
    let mut group = c.benchmark_group("bfv");
    for n in [4096usize, 8192, 16384] {
        let params = BfvParams::default_for(n).expect("default set");
        let he = params.he();
        let t = params.plain_modulus().value();
        let id = |op: &str| BenchmarkId::new(op, format!("{n}/{}", he.log_q()));
        let mut rng = ChaCha20Rng::seed_from_u64(n as u64);
        let sk = SecretKey::generate(he, &mut rng);
        let pk = PublicKey::generate(he, &sk, &mut rng);
        let rlk = RelinKey::generate(he, &sk, &mut rng);
        let gk = GaloisKeys::generate(he, &sk, &[rotation_galois_element(n, 1)], &mut rng)
            .expect("Galois key");
        let enc = BatchEncoder::new(n, t).expect("encoder");
        let values: Vec<u64> = (0..n).map(|_| rng.next_u64() % t).collect();
        let pt = enc.encode_u64(&values).expect("encode");
        let ct = encrypt_pk(&params, &pk, &pt, &mut rng).expect("encrypt");
        let ct2 = encrypt_pk(&params, &pk, &pt, &mut rng).expect("encrypt");
        let mut ev = Evaluator::new(&params);
        let many: Vec<_> = (0..16).map(|_| &ct).collect();
        let weights: Vec<i64> = (0..16).map(|i| i - 8).collect();

        group.bench_function(id("keygen"), |b| {
            b.iter(|| {
                let sk = SecretKey::generate(he, &mut rng);
                let pk = PublicKey::generate(he, &sk, &mut rng);
                black_box((pk, RelinKey::generate(he, &sk, &mut rng)))
            })
        });
        group.bench_function(id("encode"), |b| {
            b.iter(|| enc.encode_u64(black_box(&values)))
        });
        group.bench_function(id("decode"), |b| b.iter(|| enc.decode_u64(black_box(&pt))));
        group.bench_function(id("encrypt"), |b| {
            b.iter(|| encrypt_pk(&params, &pk, black_box(&pt), &mut rng))
        });
        group.bench_function(id("decrypt"), |b| {
            b.iter(|| decrypt(&params, &sk, black_box(&ct)))
        });
        group.bench_function(id("decrypt-measured"), |b| {
            b.iter(|| decrypt_measured(&params, &sk, black_box(&ct)))
        });
        group.bench_function(id("add"), |b| b.iter(|| ev.add(black_box(&ct), &ct2)));
        group.bench_function(id("mul-plain"), |b| {
            b.iter(|| ev.mul_plain(black_box(&ct), &pt))
        });
        group.bench_function(id("mul-scalar"), |b| {
            b.iter(|| ev.mul_scalar(black_box(&ct), 7))
        });
        group.bench_function(id("dot16-scalar"), |b| {
            b.iter(|| ev.dot_scalar(black_box(&many), &weights))
        });
        group.bench_function(id("mul-relin"), |b| {
            b.iter(|| ev.mul(black_box(&ct), &ct2, &rlk))
        });
        group.bench_function(id("rotate"), |b| {
            b.iter(|| ev.rotate_rows(black_box(&ct), 1, &gk))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(10);
    targets = bfv
}
criterion_main!(benches);
