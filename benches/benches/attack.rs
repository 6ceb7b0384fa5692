//! The plaintext attack work of a white-box attacker: one vector–Jacobian product (scores
//! and the input gradient of the cross-entropy) of the paper's MNIST and Fashion-MNIST
//! networks, for one chunk of 64 images on one thread (`Network::vjp`) and for 1,024 images
//! on all threads (`Model::vjp`, what every BIM, PGD and C&W step costs), and the forward
//! pass alone, and one training step (the loss's parameter gradient, what `heist train`
//! repeats); and the same for the reconstruction attack's convolutional generator (input
//! ten scores, output one image), whose wider convolutions take the same code path. Weights
//! and inputs are seeded random values: the cost does not depend on them.
#![expect(
    missing_docs,
    reason = "criterion_group! generates an undocumented pub fn"
)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use heist::attack::reconstruction::generator::GeneratorKind;
use heist::model::network::{Loss, Target};
use heist::model::{Architecture, Model};
use heist::oracle::{cross_entropy_cotangent, Scores};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

const PIXELS: usize = 784;

/// `n` uniform values in `[-scale, scale)`.
fn uniform(rng: &mut ChaCha20Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|_| ((rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0) * scale)
        .collect()
}

fn attack(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    for arch in Architecture::ALL {
        let network = arch.network();
        let params = uniform(&mut rng, network.param_count(), 0.05);
        let model = Model::new(arch, params.clone()).expect("the architecture's parameter count");
        let mut group = c.benchmark_group(format!("attack/{arch}"));
        for n in [64, 1024] {
            let images: Vec<f32> = uniform(&mut rng, n * PIXELS, 0.5)
                .into_iter()
                .map(|v| v + 0.5)
                .collect();
            group.throughput(Throughput::Elements(n as u64));
            if n == 64 {
                group.bench_with_input(BenchmarkId::new("vjp-1-thread", n), &images, |b, x| {
                    b.iter(|| {
                        network.vjp(&params, x, n, |_, z| {
                            cross_entropy_cotangent(&Scores::try_from(z).expect("ten scores"), 0)
                                .to_vec()
                        })
                    });
                });
                group.bench_with_input(BenchmarkId::new("forward-1-thread", n), &images, |b, x| {
                    b.iter(|| network.forward(&params, x, n));
                });
                let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
                group.bench_with_input(
                    BenchmarkId::new("train-step-1-thread", n),
                    &images,
                    |b, x| {
                        let mut grad = vec![0.0; params.len()];
                        b.iter(|| network.loss_grad(&params, x, &labels, 1.0, &mut grad, None));
                    },
                );
            } else {
                group.bench_with_input(BenchmarkId::new("vjp-all-threads", n), &images, |b, x| {
                    b.iter(|| {
                        model.vjp(x, &|_, z| {
                            cross_entropy_cotangent(&Scores::try_from(z).expect("ten scores"), 0)
                                .to_vec()
                        })
                    });
                });
            }
        }
        group.finish();
    }
}

fn generator(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let network = GeneratorKind::Deconv.network();
    let params = uniform(&mut rng, network.param_count(), 0.05);
    let n = 64;
    let inputs = uniform(&mut rng, n * network.input_len(), 1.0);
    let pixels = network.output_len();
    let mut group = c.benchmark_group("attack/generator-deconv");
    group.throughput(Throughput::Elements(n as u64));
    group.bench_with_input(BenchmarkId::new("vjp-1-thread", n), &inputs, |b, x| {
        b.iter(|| network.vjp(&params, x, n, |_, z| vec![1.0; pixels.min(z.len())]));
    });
    group.bench_with_input(BenchmarkId::new("forward-1-thread", n), &inputs, |b, x| {
        b.iter(|| network.forward(&params, x, n));
    });
    let target = uniform(&mut rng, n * pixels, 0.5);
    group.bench_with_input(
        BenchmarkId::new("train-step-1-thread", n),
        &inputs,
        |b, x| {
            let mut grad = vec![0.0; params.len()];
            b.iter(|| {
                network.target_grad(
                    &params,
                    x,
                    Target::Values(&target, Loss::Mse),
                    1.0,
                    &mut grad,
                    None,
                )
            });
        },
    );
    group.finish();
}

criterion_group!(benches, attack, generator);
criterion_main!(benches);
