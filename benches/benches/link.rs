//! The cost of authenticating the client ↔ trusted-party link (`heist::service::auth`):
//! sealing and opening a `Query` of 1, 16 and 256 images (the client's default frame) and its
//! `Scores` reply, beside encoding and decoding the same payloads without authentication.
#![expect(
    missing_docs,
    reason = "criterion_group! generates an undocumented pub fn"
)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use heist::oracle::{Image, IMAGE_PIXELS};
use heist::service::auth::{
    open_query, open_scores, seal_query, seal_scores, LinkKey, ReplayGuard,
};
use heist::service::message;

fn link(c: &mut Criterion) {
    let key = LinkKey::new(&[0x5a; 32]).expect("a 32-byte key");
    let mut group = c.benchmark_group("client link");
    for n in [1usize, 16, 256] {
        let images: Vec<Image> = (0..n)
            .map(|i| {
                let pixels: Vec<f32> = (0..IMAGE_PIXELS)
                    .map(|k| ((i * 31 + k * 7) % 256) as f32 / 255.0)
                    .collect();
                Image::new(&pixels).expect("pixels in [0, 1]")
            })
            .collect();
        let scores = vec![[0.25f32; 10]; n];
        let query = message::encode_images(&images).expect("encodes");
        group.throughput(Throughput::Bytes(query.len() as u64));
        group.bench_with_input(BenchmarkId::new("plain request", n), &n, |b, _| {
            b.iter(|| {
                let q = message::encode_images(&images).expect("encodes");
                let back = message::decode_images(&q, n).expect("decodes");
                let r = message::encode_scores(&scores).expect("encodes");
                (back, message::decode_scores(&r, n).expect("decodes"))
            });
        });
        let mut counter = 0u128;
        let guard = ReplayGuard::default();
        group.bench_with_input(BenchmarkId::new("authenticated request", n), &n, |b, _| {
            b.iter(|| {
                counter += 1;
                let nonce = counter.to_le_bytes();
                let q = message::encode_images(&images).expect("encodes");
                let sealed = seal_query(&key, &nonce, &q);
                let (nonce, inner) = open_query(&key, &sealed, &guard).expect("authentic");
                let back = message::decode_images(inner, n).expect("decodes");
                let r = seal_scores(
                    &key,
                    &nonce,
                    &message::encode_scores(&scores).expect("encodes"),
                );
                let inner = open_scores(&key, &nonce, &r).expect("authentic");
                (back, message::decode_scores(inner, n).expect("decodes"))
            });
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(300))
        .measurement_time(std::time::Duration::from_secs(2))
        .sample_size(20);
    targets = link
}
criterion_main!(benches);
