//! Slow, obvious oracles that the fast paths of heist are checked against,
//! and the seeded random number generators the suites draw from.

/// A seeded ChaCha RNG for tests; the seed is printed so a failure can be replayed.
pub fn seeded_rng(label: &str, seed: u64) -> rand_chacha::ChaCha20Rng {
    use rand_core::SeedableRng;
    eprintln!("[{label}] rng seed = {seed}");
    rand_chacha::ChaCha20Rng::seed_from_u64(seed)
}

/// Schoolbook negacyclic product `a · b mod (X^N + 1, p)` in `O(N²)` with `u128 %`.
pub fn schoolbook_negacyclic(a: &[u64], b: &[u64], p: u64) -> Vec<u64> {
    let n = a.len();
    assert_eq!(n, b.len());
    let p128 = p as u128;
    let mut acc = vec![0u128; n];
    let mut neg = vec![0u128; n];
    for (i, &x) in a.iter().enumerate() {
        for (j, &y) in b.iter().enumerate() {
            let prod = (x as u128 * y as u128) % p128;
            let k = i + j;
            if k < n {
                acc[k] = (acc[k] + prod) % p128;
            } else {
                neg[k - n] = (neg[k - n] + prod) % p128;
            }
        }
    }
    acc.iter()
        .zip(&neg)
        .map(|(&s, &t)| ((s + p128 - t) % p128) as u64)
        .collect()
}

/// Primality by trial division: the slow, obvious oracle for small numbers.
pub fn is_prime_trial(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    let mut d = 2u64;
    while d * d <= n {
        if n.is_multiple_of(d) {
            return false;
        }
        d += 1;
    }
    true
}

/// Evaluates `a(x) mod p` by Horner's rule.
pub fn eval_poly(a: &[u64], x: u64, p: u64) -> u64 {
    let p = p as u128;
    a.iter()
        .rev()
        .fold(0u128, |acc, &c| (acc * x as u128 + c as u128) % p) as u64
}

/// Slow, obvious unsigned big integers (little-endian `u64` limbs, no leading zero
/// limbs) for checking RNS arithmetic against the integers it represents.
pub mod big {
    use std::cmp::Ordering;

    /// An unsigned integer of any size.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Big(Vec<u64>);

    impl Big {
        /// The integer `x`.
        pub fn from_u64(x: u64) -> Self {
            let mut b = Big(vec![x]);
            b.trim();
            b
        }

        fn trim(&mut self) {
            while self.0.last() == Some(&0) {
                self.0.pop();
            }
        }

        /// Whether this is zero.
        pub fn is_zero(&self) -> bool {
            self.0.is_empty()
        }

        /// The number of bits (0 for zero).
        pub fn bits(&self) -> u32 {
            match self.0.last() {
                None => 0,
                Some(&top) => 64 * (self.0.len() as u32 - 1) + 64 - top.leading_zeros(),
            }
        }

        fn bit(&self, i: u32) -> bool {
            let w = (i / 64) as usize;
            w < self.0.len() && (self.0[w] >> (i % 64)) & 1 == 1
        }

        /// `self · m`.
        pub fn mul_u64(&self, m: u64) -> Self {
            let mut out = Vec::with_capacity(self.0.len() + 1);
            let mut carry = 0u128;
            for &x in &self.0 {
                let v = x as u128 * m as u128 + carry;
                out.push(v as u64);
                carry = v >> 64;
            }
            out.push(carry as u64);
            let mut b = Big(out);
            b.trim();
            b
        }

        /// `self + other`.
        pub fn add(&self, other: &Self) -> Self {
            let len = self.0.len().max(other.0.len());
            let mut out = Vec::with_capacity(len + 1);
            let mut carry = 0u128;
            for i in 0..len {
                let v = *self.0.get(i).unwrap_or(&0) as u128
                    + *other.0.get(i).unwrap_or(&0) as u128
                    + carry;
                out.push(v as u64);
                carry = v >> 64;
            }
            out.push(carry as u64);
            let mut b = Big(out);
            b.trim();
            b
        }

        /// `self - other`; panics if `other > self`.
        pub fn sub(&self, other: &Self) -> Self {
            assert!(*self >= *other, "Big::sub underflow");
            let mut out = Vec::with_capacity(self.0.len());
            let mut borrow = 0i128;
            for i in 0..self.0.len() {
                let mut v = self.0[i] as i128 - *other.0.get(i).unwrap_or(&0) as i128 - borrow;
                borrow = 0;
                if v < 0 {
                    v += 1i128 << 64;
                    borrow = 1;
                }
                out.push(v as u64);
            }
            let mut b = Big(out);
            b.trim();
            b
        }

        /// `self mod m` for a word `m`.
        pub fn rem_u64(&self, m: u64) -> u64 {
            self.0
                .iter()
                .rev()
                .fold(0u128, |r, &x| ((r << 64) | x as u128) % m as u128) as u64
        }

        /// `(self / d, self mod d)` by binary long division.
        pub fn divmod(&self, d: &Self) -> (Self, Self) {
            assert!(!d.is_zero(), "Big::divmod by zero");
            let mut q = Big(vec![0; self.0.len()]);
            let mut r = Big(Vec::new());
            for i in (0..self.bits()).rev() {
                r = r.add(&r);
                if self.bit(i) {
                    r = r.add(&Big::from_u64(1));
                }
                if r >= *d {
                    r = r.sub(d);
                    q.0[(i / 64) as usize] |= 1 << (i % 64);
                }
            }
            q.trim();
            (q, r)
        }

        /// The product of `xs`.
        pub fn product(xs: &[u64]) -> Self {
            xs.iter().fold(Big::from_u64(1), |acc, &x| acc.mul_u64(x))
        }

        /// The integer in `[0, Π primes)` with the given residues (CRT, one prime at a time).
        pub fn from_residues(residues: &[u64], primes: &[u64]) -> Self {
            assert_eq!(residues.len(), primes.len());
            let mut x = Big::from_u64(0);
            let mut m = Big::from_u64(1);
            for (&r, &q) in residues.iter().zip(primes) {
                // x + m·((r - x) · m^-1 mod q)
                let q128 = q as u128;
                let xm = x.rem_u64(q) as u128;
                let mm = m.rem_u64(q) as u128;
                let inv = pow_mod(mm, q128 - 2, q128);
                let diff = (r as u128 % q128 + q128 - xm) % q128;
                let c = (diff * inv % q128) as u64;
                x = x.add(&m.mul_u64(c));
                m = m.mul_u64(q);
            }
            x
        }
    }

    fn pow_mod(mut b: u128, mut e: u128, m: u128) -> u128 {
        let mut acc = 1u128 % m;
        b %= m;
        while e > 0 {
            if e & 1 == 1 {
                acc = acc * b % m;
            }
            b = b * b % m;
            e >>= 1;
        }
        acc
    }

    impl PartialOrd for Big {
        fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
            Some(self.cmp(other))
        }
    }

    impl Ord for Big {
        fn cmp(&self, other: &Self) -> Ordering {
            self.0
                .len()
                .cmp(&other.0.len())
                .then_with(|| self.0.iter().rev().cmp(other.0.iter().rev()))
        }
    }
}

/// The first `count` MNIST test images (the canonical files when configured, else the
/// embedded subset) as the service's [`heist::oracle::Image`]s.
///
/// # Panics
/// When no data loads or `count` exceeds the test set.
pub fn mnist_test_images(count: usize) -> Vec<heist::oracle::Image> {
    let data = heist::data::load(heist::data::Dataset::Mnist, None, true).expect("MNIST loads");
    (0..count)
        .map(|i| {
            let mut pixels = Vec::with_capacity(heist::oracle::IMAGE_PIXELS);
            data.test.push_scaled(i, &mut pixels);
            heist::oracle::Image::new(&pixels).expect("28x28 pixels in [0, 1]")
        })
        .collect()
}

/// The configuration of every property suite: `cases` cases drawn from a fixed seed, so
/// that a run (CI's included) explores the same cases every time.
pub fn seeded_config(cases: u32) -> proptest::test_runner::Config {
    proptest::test_runner::Config {
        cases,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x6865_6973_7400),
        ..proptest::test_runner::Config::default()
    }
}

/// Random models and inputs shared by the inference suites.
pub mod models {
    use heist_core::nn::{Conv2d, Dense, Layer, MnistWeights, Model, Padding, Shape, SumPool2d};
    use proptest::prelude::*;
    use rand_core::RngCore;

    /// Uniform in [lo, hi).
    pub fn uniform(rng: &mut impl RngCore, lo: f64, hi: f64) -> f64 {
        let unit = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        lo + (hi - lo) * unit
    }

    /// Glorot-uniform weights: U(-a, a) with a = sqrt(6 / (fan_in + fan_out)).
    pub fn glorot(rng: &mut impl RngCore, n: usize, fan_in: usize, fan_out: usize) -> Vec<f64> {
        let a = (6.0 / (fan_in + fan_out) as f64).sqrt();
        (0..n).map(|_| uniform(rng, -a, a)).collect()
    }

    /// The paper's MNIST network with Glorot weights and small biases.
    pub fn mnist_model(rng: &mut impl RngCore) -> Model {
        Model::mnist(MnistWeights {
            conv_weight: glorot(rng, 125, 25, 125),
            conv_bias: small_bias(rng, 5),
            dense1_weight: glorot(rng, 98_000, 980, 100),
            dense1_bias: small_bias(rng, 100),
            dense2_weight: glorot(rng, 1_000, 100, 10),
            dense2_bias: small_bias(rng, 10),
        })
        .expect("the MNIST architecture")
    }

    /// The paper's structure at a small size: conv 1→2 (3x3, stride 2, same) on 8x8 →
    /// square → flatten (32) → dense 8 → square → dense 4; Glorot weights, small biases.
    pub fn small_paper_model(rng: &mut impl RngCore) -> Model {
        Model::new(
            Shape::Image {
                channels: 1,
                height: 8,
                width: 8,
            },
            vec![
                Layer::Conv2d(Conv2d {
                    in_channels: 1,
                    out_channels: 2,
                    kernel: [3, 3],
                    stride: [2, 2],
                    padding: Padding::Same,
                    weight: glorot(rng, 18, 9, 18),
                    bias: Some(small_bias(rng, 2)),
                }),
                Layer::Square,
                Layer::Flatten,
                Layer::Dense(Dense {
                    in_features: 32,
                    out_features: 8,
                    weight: glorot(rng, 256, 32, 8),
                    bias: Some(small_bias(rng, 8)),
                }),
                Layer::Square,
                Layer::Dense(Dense {
                    in_features: 8,
                    out_features: 4,
                    weight: glorot(rng, 32, 8, 4),
                    bias: Some(small_bias(rng, 4)),
                }),
            ],
        )
        .expect("a valid small model")
    }

    /// Biases uniform in `[-0.05, 0.05)`.
    pub fn small_bias(rng: &mut impl RngCore, n: usize) -> Vec<f64> {
        (0..n).map(|_| uniform(rng, -0.05, 0.05)).collect()
    }

    /// Random pixels k / 255, k uniform in 0..=255.
    pub fn pixels(rng: &mut impl RngCore, n: usize) -> Vec<f64> {
        (0..n)
            .map(|_| (rng.next_u32() % 256) as f64 / 255.0)
            .collect()
    }

    /// A random small square-activation network: conv, square (optional), sum pooling
    /// (optional), flatten, dense, square (optional), dense; Glorot weights.
    pub fn random_model(rng: &mut impl RngCore, p: &Arch) -> Model {
        let (kh, kw) = (p.k, p.k);
        let conv = Conv2d {
            in_channels: p.c,
            out_channels: p.o,
            kernel: [kh, kw],
            stride: [p.s, p.s],
            padding: if p.same {
                Padding::Same
            } else {
                Padding::Valid
            },
            weight: glorot(rng, p.o * p.c * kh * kw, p.c * kh * kw, p.o * kh * kw),
            bias: p.bias.then(|| small_bias(rng, p.o)),
        };
        let input = Shape::Image {
            channels: p.c,
            height: p.h,
            width: p.h,
        };
        let mut layers = vec![Layer::Conv2d(conv)];
        if p.square1 {
            layers.push(Layer::Square);
        }
        if p.pool {
            let pool = Layer::SumPool2d(SumPool2d {
                kernel: [2, 2],
                stride: [2, 2],
                scale: 0.25,
            });
            let mut with_pool = layers.clone();
            with_pool.push(pool);
            if Model::new(input, with_pool.clone()).is_ok() {
                layers = with_pool;
            }
        }
        layers.push(Layer::Flatten);
        let flat = Model::new(input, layers.clone())
            .unwrap()
            .output_shape()
            .len()
            .unwrap();
        layers.push(Layer::Dense(Dense {
            in_features: flat,
            out_features: p.hidden,
            weight: glorot(rng, flat * p.hidden, flat, p.hidden),
            bias: p.bias.then(|| small_bias(rng, p.hidden)),
        }));
        if p.square2 {
            layers.push(Layer::Square);
        }
        layers.push(Layer::Dense(Dense {
            in_features: p.hidden,
            out_features: p.classes,
            weight: glorot(rng, p.hidden * p.classes, p.hidden, p.classes),
            bias: p.bias.then(|| small_bias(rng, p.classes)),
        }));
        Model::new(input, layers).unwrap()
    }

    #[derive(Debug, Clone)]
    /// A random small architecture: conv (optionally square, sum pooling), flatten, dense,
    /// optionally square, dense.
    pub struct Arch {
        /// Parameter `c`.
        pub c: usize,
        /// Parameter `h`.
        pub h: usize,
        /// Parameter `o`.
        pub o: usize,
        /// Parameter `k`.
        pub k: usize,
        /// Parameter `s`.
        pub s: usize,
        /// Parameter `same`.
        pub same: bool,
        /// Parameter `bias`.
        pub bias: bool,
        /// Parameter `square1`.
        pub square1: bool,
        /// Parameter `square2`.
        pub square2: bool,
        /// Parameter `pool`.
        pub pool: bool,
        /// Parameter `hidden`.
        pub hidden: usize,
        /// Parameter `classes`.
        pub classes: usize,
    }

    /// The strategy of [`Arch`].
    pub fn arch() -> impl Strategy<Value = Arch> {
        (
            (1usize..3, 4usize..11, 1usize..4, 1usize..4, 1usize..3),
            (
                any::<bool>(),
                any::<bool>(),
                any::<bool>(),
                any::<bool>(),
                any::<bool>(),
            ),
            (1usize..17, 2usize..6),
        )
            .prop_map(
                |((c, h, o, k, s), (same, bias, square1, square2, pool), (hidden, classes))| Arch {
                    c,
                    h,
                    o,
                    k,
                    s,
                    same,
                    bias,
                    square1,
                    square2,
                    pool,
                    hidden,
                    classes,
                },
            )
    }
}

/// The service pairs the `he_payload` fuzz target and its corpus suite share: dense
/// 784 → 10 with weights `±(i mod 7)/8` at ring degree 16 (insecure: small and fast).
pub mod payloads {
    use heist::service::{BatchCodec, BatchEvaluator, CodecError, HeBatchError};
    use heist::service::{BfvCodec, BfvEvaluator, CkksCodec, CkksEvaluator};
    use heist_core::nn::{Dense, Layer, Model, QuantConfig, QuantizedModel, Shape};
    use heist_he::nn::{BfvPlan, CkksPlan, PlanConfig};
    use rand_chacha::rand_core::SeedableRng;

    /// The model.
    pub fn model() -> Model {
        let weight = (0..7840)
            .map(|i| f64::from(i % 7) / 8.0 * if i % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        let dense = Dense {
            in_features: 784,
            out_features: 10,
            weight,
            bias: Some(vec![0.25; 10]),
        };
        Model::new(Shape::Flat(784), vec![Layer::Dense(dense)]).expect("a valid model")
    }

    /// The BFV pair: the model quantised at 8 bits; keys from a fixed seed.
    pub fn bfv_pair() -> (BfvCodec, BfvEvaluator) {
        let quant = QuantizedModel::new(&model(), &QuantConfig::pixels(8)).expect("quantised");
        let plan = BfvPlan::new_insecure_for_tests(&quant, 16).expect("a BFV plan");
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
        let codec = BfvCodec::new(quant, plan.clone(), &mut rng).expect("a BFV codec");
        (codec, BfvEvaluator::new(plan).expect("a BFV evaluator"))
    }

    /// The CKKS pair: the default plan configuration; keys from a fixed seed.
    pub fn ckks_pair() -> (CkksCodec, CkksEvaluator) {
        let plan = CkksPlan::new_insecure_for_tests(model().network(), &PlanConfig::default(), 16)
            .expect("a CKKS plan");
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
        let codec = CkksCodec::new(plan.clone(), &mut rng).expect("a CKKS codec");
        (codec, CkksEvaluator::new(plan).expect("a CKKS evaluator"))
    }

    /// A codec, its evaluator and the compute side's session: what the `he_payload` fuzz
    /// target runs every input through, and what `cargo test` replays its findings with.
    pub struct Fixture<C: BatchCodec, E: BatchEvaluator> {
        codec: C,
        evaluator: E,
        session: E::Session,
    }

    impl<C: BatchCodec, E: BatchEvaluator> Fixture<C, E> {
        /// The fixture of a pair (`None` when the evaluator refuses the codec's context).
        pub fn new((codec, evaluator): (C, E)) -> Option<Self> {
            let session = evaluator
                .open_session(&codec.evaluation_context().ok()?)
                .ok()?;
            Some(Self {
                codec,
                evaluator,
                session,
            })
        }

        /// Feeds `data` to the compute server as a batch and to the trusted party as a
        /// reply. Any bytes may be refused; the invariant is that a batch the server
        /// accepts yields a reply its trusted party decodes: decrypted, or refused only
        /// for what it decrypts to ([`HeBatchError::is_content`]), which the server cannot
        /// see (its input ciphertexts may encrypt anything). Its violation is the error
        /// returned.
        pub fn run(&mut self, data: &[u8]) -> Result<(), String> {
            if let Ok(reply) = self.evaluator.evaluate(&self.session, data) {
                match self.codec.decrypt_batch(&reply, 1) {
                    Ok(_) => {}
                    Err(CodecError::Backend { error, .. })
                        if error
                            .downcast_ref::<HeBatchError>()
                            .is_some_and(HeBatchError::is_content) => {}
                    Err(e) => {
                        return Err(format!("a batch the server accepted, reply refused: {e:?}"))
                    }
                }
            }
            let _ = self.codec.decrypt_batch(data, 1);
            Ok(())
        }
    }
}
