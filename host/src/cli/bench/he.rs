//! `heist bench he`: median time of every homomorphic operation at the default parameter
//! sets, per scheme.
//!
//! Each scheme registers its operations in [`SCHEMES`]: a name and a function that, for a
//! ring degree, builds its default parameters and keys and returns one timed [`HeRow`] per
//! operation. `--scheme` selects among the registered names.

use std::hint::black_box;
use std::path::PathBuf;

use anyhow::Context;
use heist_he::ckks::{decrypt, encrypt_pk, CkksParams, Encoder, Evaluator};
use heist_he::galois::rotation_element;
use heist_he::keys::{GaloisKeys, PublicKey, RelinKey, SecretKey};
use rand_core::{RngCore, SeedableRng};
use serde::Serialize;

use super::{median_ns, Budget};
use crate::cli::exit::{CliError, CliResult};

/// A scheme's benchmark: the timed operations at ring degree `n`.
pub type SchemeBench = fn(n: usize, budget: Budget) -> anyhow::Result<Vec<HeRow>>;

/// A named operation to time.
pub type TimedOp<'a> = (&'static str, Box<dyn FnMut() + 'a>);

/// Times `ops` in alternation ([`median_ns`]) and labels each median with the scheme and
/// the parameters `he`.
pub fn time_ops(
    scheme: &'static str,
    he: &heist_he::params::HeParams,
    ops: &mut [TimedOp<'_>],
    budget: Budget,
) -> Vec<HeRow> {
    let names: Vec<&'static str> = ops.iter().map(|(name, _)| *name).collect();
    let mut fns: Vec<&mut dyn FnMut()> = ops
        .iter_mut()
        .map(|(_, f)| &mut **f as &mut dyn FnMut())
        .collect();
    let medians = median_ns(&mut fns, budget);
    let mut primes_bits: Vec<u32> = he.chain().iter().map(|q| 64 - q.leading_zeros()).collect();
    primes_bits.push(64 - he.special().leading_zeros());
    names
        .into_iter()
        .zip(medians)
        .map(|(op, ns)| HeRow {
            scheme,
            n: he.n(),
            log_q: he.log_q(),
            primes_bits: primes_bits.clone(),
            op,
            median_ms: ns / 1e6,
        })
        .collect()
}

/// The registered schemes, by `--scheme` name.
pub const SCHEMES: &[(&str, SchemeBench)] = &[("ckks", ckks), ("bfv", bfv)];

/// Time every homomorphic operation.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  heist bench he --scheme ckks --n 4096,8192 --json he.json")]
pub struct HeArgs {
    /// Schemes to time (default: all registered).
    #[arg(long, value_delimiter = ',')]
    scheme: Vec<String>,
    /// Ring degrees (each scheme's default parameter set for that degree).
    #[arg(long, value_delimiter = ',', default_value = "4096,8192,16384")]
    n: Vec<usize>,
    /// Also write the results as JSON to this file (`-` for stdout).
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Milliseconds of timed batches per operation.
    #[arg(long, default_value_t = 300)]
    ms: u64,
}

/// One timed operation.
#[derive(Debug, Clone, Serialize)]
pub struct HeRow {
    /// The scheme name.
    pub scheme: &'static str,
    /// The ring degree.
    pub n: usize,
    /// The total modulus size in bits (chain and special primes).
    pub log_q: u32,
    /// The chain's prime sizes in bits, then the special prime's.
    pub primes_bits: Vec<u32>,
    /// The operation.
    pub op: &'static str,
    /// The median time in milliseconds.
    pub median_ms: f64,
}

/// The JSON document `--json` writes.
#[derive(Debug, Serialize)]
struct Report {
    benchmark: &'static str,
    batches: usize,
    ms_per_measurement: u64,
    results: Vec<HeRow>,
}

/// Runs `heist bench he`.
///
/// # Errors
/// Bad input (exit code 2) for an unknown scheme or a degree without a default set; a
/// failure if the JSON file cannot be written.
pub fn run(args: HeArgs) -> CliResult {
    let chosen: Vec<&(&str, SchemeBench)> = if args.scheme.is_empty() {
        SCHEMES.iter().collect()
    } else {
        args.scheme
            .iter()
            .map(|s| {
                SCHEMES.iter().find(|(name, _)| name == s).ok_or_else(|| {
                    let names: Vec<&str> = SCHEMES.iter().map(|(n, _)| *n).collect();
                    CliError::bad_input(anyhow::anyhow!(
                        "--scheme: unknown scheme {s:?}, expected one of {names:?}"
                    ))
                })
            })
            .collect::<Result<_, _>>()?
    };
    let budget = Budget {
        total: std::time::Duration::from_millis(args.ms),
        batches: 9,
    };
    let mut rows = Vec::new();
    println!(
        "{:>6} {:>6} {:>6}  {:<28} {:>12}",
        "scheme", "N", "log q", "operation", "median ms"
    );
    for (name, bench) in chosen {
        for &n in &args.n {
            let timed = bench(n, budget)
                .map_err(|e| CliError::bad_input(e.context(format!("{name} at N = {n}"))))?;
            for r in timed {
                println!(
                    "{:>6} {:>6} {:>6}  {:<28} {:>12.4}",
                    r.scheme, r.n, r.log_q, r.op, r.median_ms
                );
                rows.push(r);
            }
        }
    }
    if let Some(path) = &args.json {
        let report = Report {
            benchmark: "he",
            batches: budget.batches,
            ms_per_measurement: args.ms,
            results: rows,
        };
        crate::cli::exit::write_json(path, &report)?;
    }
    Ok(())
}

/// CKKS at [`CkksParams::default_for`]`(n)`: every operation on random full-slot messages,
/// ciphertexts at the top level (the rescale input is a product at the top level).
fn ckks(n: usize, budget: Budget) -> anyhow::Result<Vec<HeRow>> {
    let params = CkksParams::default_for(n).context("default CKKS parameters")?;
    let he = params.he();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(0x636b_6b73);
    let sk = SecretKey::generate(he, &mut rng);
    let pk = PublicKey::generate(he, &sk, &mut rng);
    let rlk = RelinKey::generate(he, &sk, &mut rng);
    let gk = GaloisKeys::generate(he, &sk, &[rotation_element(n, 1)], &mut rng)
        .context("Galois keys")?;
    let enc = Encoder::new(&params);
    let top = he.max_level();
    let delta = params.scale();
    let values: Vec<f64> = (0..params.slots())
        .map(|_| (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0)
        .collect();
    let pt = enc.encode(&values, delta, top)?;
    let ct = encrypt_pk(&params, &pk, &pt, &mut rng)?;
    let ct2 = encrypt_pk(&params, &pk, &pt, &mut rng)?;
    let ev = Evaluator::new(&params);
    let product = Evaluator::new(&params).mul_relin(&ct, &ct2, &rlk)?;
    let many: Vec<_> = (0..16).map(|_| &ct).collect();
    let weights: Vec<i64> = (0..16).map(|i| i - 8).collect();
    let last = ev.mod_switch_to(&ct, 1)?;
    let mut acc = ct.clone();
    let (mut r1, mut r2, mut r3) = (rng.clone(), rng.clone(), rng.clone());
    let (mut e1, mut e2, mut e3, mut e4) = (
        Evaluator::new(&params),
        Evaluator::new(&params),
        Evaluator::new(&params),
        Evaluator::new(&params),
    );
    let mut ops: Vec<TimedOp<'_>> = vec![
        (
            "keygen (sk+pk+relin)",
            Box::new(|| {
                let sk = SecretKey::generate(he, &mut r1);
                let pk = PublicKey::generate(he, &sk, &mut r1);
                black_box((pk, RelinKey::generate(he, &sk, &mut r1)));
            }),
        ),
        (
            "encode",
            Box::new(|| {
                black_box(enc.encode(black_box(&values), delta, top).ok());
            }),
        ),
        (
            "encrypt (pk)",
            Box::new(|| {
                black_box(encrypt_pk(&params, &pk, black_box(&pt), &mut r2).ok());
            }),
        ),
        (
            "encode+encrypt (pk)",
            Box::new(|| {
                let p = enc.encode(black_box(&values), delta, top).ok();
                black_box(p.map(|p| encrypt_pk(&params, &pk, &p, &mut r3)));
            }),
        ),
        (
            "decrypt",
            Box::new(|| {
                black_box(decrypt(&params, &sk, black_box(&ct)).ok());
            }),
        ),
        (
            "decode",
            Box::new(|| {
                black_box(enc.decode(black_box(&pt)).ok());
            }),
        ),
        (
            "decrypt+decode",
            Box::new(|| {
                let p = decrypt(&params, &sk, black_box(&ct)).ok();
                black_box(p.map(|p| enc.decode(&p)));
            }),
        ),
        (
            "decrypt+decode (last level)",
            Box::new(|| {
                let p = decrypt(&params, &sk, black_box(&last)).ok();
                black_box(p.map(|p| enc.decode(&p)));
            }),
        ),
        (
            "add (in place)",
            Box::new(|| {
                black_box(ev.add_assign(&mut acc, black_box(&ct2)).ok());
            }),
        ),
        (
            "add",
            Box::new(|| {
                black_box(ev.add(black_box(&ct), &ct2).ok());
            }),
        ),
        (
            "mul-plain",
            Box::new(|| {
                black_box(ev.mul_plain(black_box(&ct), &pt).ok());
            }),
        ),
        (
            "mul-scalar (integer)",
            Box::new(|| {
                black_box(ev.mul_integer(black_box(&ct), 7).ok());
            }),
        ),
        (
            "dot 16 x integer",
            Box::new(|| {
                black_box(ev.dot_integer(black_box(&many), &weights).ok());
            }),
        ),
        (
            "mul+relin",
            Box::new(|| {
                black_box(e1.mul_relin(black_box(&ct), &ct2, &rlk).ok());
            }),
        ),
        (
            "rescale",
            Box::new(|| {
                black_box(e2.rescale(black_box(&product)).ok());
            }),
        ),
        (
            "square+relin+rescale",
            Box::new(|| {
                let s = e3.square_relin(black_box(&ct), &rlk).ok();
                black_box(s.map(|s| e3.rescale(&s)));
            }),
        ),
        (
            "rotate",
            Box::new(|| {
                black_box(e4.rotate(black_box(&ct), 1, &gk).ok());
            }),
        ),
    ];
    Ok(time_ops("ckks", he, &mut ops, budget))
}

/// BFV at [`heist_he::bfv::BfvParams::default_for`]`(n)` (SEAL's default prime sizes,
/// `t = 65537`): every operation on random full-slot messages.
fn bfv(n: usize, budget: Budget) -> anyhow::Result<Vec<HeRow>> {
    use heist_he::bfv;
    let params = bfv::BfvParams::default_for(n).context("default BFV parameters")?;
    let he = params.he();
    let t = params.plain_modulus().value();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(0x6266_7600);
    let sk = SecretKey::generate(he, &mut rng);
    let pk = PublicKey::generate(he, &sk, &mut rng);
    let rlk = RelinKey::generate(he, &sk, &mut rng);
    let gk = GaloisKeys::generate(he, &sk, &[bfv::rotation_galois_element(n, 1)], &mut rng)
        .context("Galois keys")?;
    let enc = bfv::BatchEncoder::new(n, t)?;
    let values: Vec<u64> = (0..n).map(|_| rng.next_u64() % t).collect();
    let pt = enc.encode_u64(&values)?;
    let ct = bfv::encrypt_pk(&params, &pk, &pt, &mut rng)?;
    let ct2 = bfv::encrypt_pk(&params, &pk, &pt, &mut rng)?;
    let ev = bfv::Evaluator::new(&params);
    let many: Vec<_> = (0..16).map(|_| &ct).collect();
    let weights: Vec<i64> = (0..16).map(|i| i - 8).collect();
    let (mut r1, mut r2, mut r3) = (rng.clone(), rng.clone(), rng.clone());
    let (mut e1, mut e2) = (bfv::Evaluator::new(&params), bfv::Evaluator::new(&params));
    let mut ops: Vec<TimedOp<'_>> = vec![
        (
            "keygen (sk+pk+relin)",
            Box::new(|| {
                let sk = SecretKey::generate(he, &mut r1);
                let pk = PublicKey::generate(he, &sk, &mut r1);
                black_box((pk, RelinKey::generate(he, &sk, &mut r1)));
            }),
        ),
        (
            "encode",
            Box::new(|| {
                black_box(enc.encode_u64(black_box(&values)).ok());
            }),
        ),
        (
            "encrypt (pk)",
            Box::new(|| {
                black_box(bfv::encrypt_pk(&params, &pk, black_box(&pt), &mut r2).ok());
            }),
        ),
        (
            "encrypt (sk)",
            Box::new(|| {
                black_box(bfv::encrypt_sk(&params, &sk, black_box(&pt), &mut r3).ok());
            }),
        ),
        (
            "decrypt",
            Box::new(|| {
                black_box(bfv::decrypt(&params, &sk, black_box(&ct)).ok());
            }),
        ),
        (
            "decode",
            Box::new(|| {
                black_box(enc.decode_u64(black_box(&pt)).ok());
            }),
        ),
        (
            "add",
            Box::new(|| {
                black_box(ev.add(black_box(&ct), &ct2).ok());
            }),
        ),
        (
            "mul-plain",
            Box::new(|| {
                black_box(ev.mul_plain(black_box(&ct), &pt).ok());
            }),
        ),
        (
            "mul-scalar",
            Box::new(|| {
                black_box(ev.mul_scalar(black_box(&ct), 7).ok());
            }),
        ),
        (
            "dot 16 x scalar",
            Box::new(|| {
                black_box(ev.dot_scalar(black_box(&many), &weights).ok());
            }),
        ),
        (
            "mul+relin",
            Box::new(|| {
                black_box(e1.mul(black_box(&ct), &ct2, &rlk).ok());
            }),
        ),
        (
            "rotate",
            Box::new(|| {
                black_box(e2.rotate_rows(black_box(&ct), 1, &gk).ok());
            }),
        ),
    ];
    Ok(time_ops("bfv", he, &mut ops, budget))
}
