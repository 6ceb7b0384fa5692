//! `heist attack key-recovery`: attack 4, the trusted party's secret key from its releases.

use std::path::PathBuf;
use std::time::Instant;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use crate::attack::key_recovery::sweep::{sweep, HonestScores, SweepPoint};
use crate::attack::key_recovery::{active, passive, Adversary, Outcome};
use crate::cli::exit::{write_json, CliError, CliResult};
use crate::cli::options::{use_threads, DataOptions, ModelOptions};
use crate::cli::progress::Progress;
use crate::inference::{
    calibrated_ckks_plan, calibration_images, compare_releasing, to_images, Comparison,
};
use crate::model::Model;
use crate::plot::{LineChart, Series};
use crate::service::ckks::WELL_FORMED_FACTOR;
use crate::service::{bfv_plan, ReleasePolicy, Scheme};

/// Images of the victim whose encrypted batch checks the recovered key.
const VICTIM_IMAGES: usize = 8;

/// Recover the trusted party's secret key from what it releases (attack 4).
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    heist attack key-recovery --scheme ckks --adversary active\n  \
    heist attack key-recovery --scheme ckks --adversary active --adaptive 1,10,100 \
    --release noised:0.1\n  \
    heist attack key-recovery --scheme bfv --adversary active --unchecked --json key.json\n  \
    heist attack key-recovery --scheme ckks --adversary passive --limit 0")]
pub struct KeyRecoveryArgs {
    #[command(flatten)]
    data: DataOptions,
    /// Scheme between trusted party and compute server.
    #[arg(long, value_enum, default_value = "ckks")]
    scheme: KeyScheme,
    /// Who attacks: an honest-but-curious or a malicious compute server, each with a
    /// colluding client.
    #[arg(long, value_enum, default_value = "active")]
    adversary: Adversary,
    /// What the trusted party releases of each decrypted score: `exact` (unchanged, then
    /// f32 as every score), `rounded:BITS` (to a multiple of 2^-BITS), `noised:SIGMA`
    /// (Gaussian noise of deviation SIGMA), `flooded[:S[:TAU]]` (Gaussian noise of
    /// sqrt(12 TAU) 2^(S/2) times the noise measured at setup; S = 30, TAU = 1 by default);
    /// the last two CKKS only.
    #[arg(long, default_value = "exact", value_parser = crate::cli::service::parse_release)]
    release: ReleasePolicy,
    /// The active server multiplies its crafted ciphertexts by a gain chosen from the
    /// release policy (Li and Micciancio's counter to rounding; CKKS only).
    #[arg(long)]
    amplify: bool,
    /// The BFV trusted party releases whatever a reply decrypts to, without checking its
    /// scores against an honest evaluation's (the undefended baseline; a deployment
    /// always checks).
    #[arg(long)]
    unchecked: bool,
    /// The active BFV server probes one slot of `s` per batch for this many batches
    /// instead of the one-batch attack: the adversary the reply check leaves (a released
    /// probe shows one slot).
    #[arg(long, value_name = "TAU")]
    probes: Option<usize>,
    /// The active server adapts to the trusted party's well-formedness check (CKKS): it
    /// scales its crafted ciphertexts to pass it and averages the releases of several
    /// batches; the key is solved after each of these numbers of batches,
    /// comma-separated (with `--sweep`: for every policy; empty: not run).
    #[arg(long, value_name = "TAU,...", value_delimiter = ',')]
    adaptive: Vec<usize>,
    #[command(flatten)]
    model: ModelOptions,
    /// Seed of the keys, the service's randomness and the training run.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Test images classified through the service for `accuracy` and
    /// `agreement_with_plain` (0: skip).
    #[arg(long, value_name = "K", default_value_t = 1000)]
    limit: usize,
    /// Also write the results as JSON to this file (`-` for stdout, which then holds only
    /// the JSON).
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Sweep the release policies of `--policies` instead of one attack (CKKS): both
    /// adversaries (the active one amplifying, and adaptive for the budgets of
    /// `--adaptive`) through a service per policy, and the
    /// accuracy and agreement of the first `--limit` test images under each.
    #[arg(long)]
    sweep: bool,
    /// The policies `--sweep` measures, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        value_parser = crate::cli::service::parse_release,
        default_value = "exact,rounded:16,rounded:8,rounded:4,rounded:0,noised:0.01,noised:0.03,noised:0.1,noised:0.3,noised:1,noised:3,flooded"
    )]
    policies: Vec<ReleasePolicy>,
    /// Directory for the sweep's figures (PNG): attack success, accuracy and agreement
    /// against the noise deviation and against the rounding bits.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// The encrypting schemes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum KeyScheme {
    /// CKKS.
    Ckks,
    /// BFV.
    Bfv,
}

impl From<KeyScheme> for Scheme {
    fn from(s: KeyScheme) -> Self {
        match s {
            KeyScheme::Ckks => Scheme::Ckks,
            KeyScheme::Bfv => Scheme::Bfv,
        }
    }
}

/// Runs `heist attack key-recovery`.
///
/// # Errors
/// Bad input (exit 2) for unusable data, model or arguments, failure (exit 1) otherwise.
pub fn run(args: KeyRecoveryArgs) -> CliResult {
    use_threads(args.threads)?;
    let quiet = args.json.as_deref() == Some(std::path::Path::new("-"));
    let data = args.data.load().map_err(CliError::bad_input)?;
    let resolved = args.model.resolve(&data, args.seed)?;
    let (model, model_label) = (resolved.model, resolved.path.display().to_string());
    let test = to_images(&data.test.truncated(VICTIM_IMAGES * 4))?;
    let (filler, victim) = test.split_at(test.len().saturating_sub(VICTIM_IMAGES));
    if filler.is_empty() {
        return Err(CliError::bad_input(anyhow::anyhow!(
            "the test set has too few images ({})",
            test.len()
        )));
    }
    if args.sweep {
        return run_sweep(&args, &model, &data, (filler, victim), &model_label);
    }
    let start = Instant::now();
    let scheme = Scheme::from(args.scheme);
    let (outcome, hypothetical, adaptive) = attack(&args, &model, &data.train, filler, victim)?;
    let attack_seconds = start.elapsed().as_secs_f64();
    let comparison: Option<Comparison> = if args.limit > 0 {
        Some(compare_releasing(
            &model,
            &data.train,
            &data.test.truncated(args.limit),
            scheme,
            args.release,
        )?)
    } else {
        None
    };
    if !quiet {
        for o in &adaptive {
            println!("after {} batch(es):", o.batches);
            print_outcome(o, None, None);
        }
        print_outcome(&outcome, hypothetical.as_ref(), comparison.as_ref());
    }
    if let Some(path) = &args.json {
        let mut out = serde_json::to_value(&outcome).map_err(anyhow::Error::from)?;
        if let Some(obj) = out.as_object_mut() {
            obj.insert(
                "accuracy".to_owned(),
                comparison.as_ref().map(|c| c.encrypted_accuracy).into(),
            );
            obj.insert(
                "plain_accuracy".to_owned(),
                comparison.as_ref().map(|c| c.plain_accuracy).into(),
            );
            obj.insert(
                "agreement_with_plain".to_owned(),
                comparison.as_ref().map(|c| c.agreement).into(),
            );
            obj.insert(
                "accuracy_images".to_owned(),
                comparison.as_ref().map(|c| c.images).into(),
            );
            if !adaptive.is_empty() {
                obj.insert(
                    "adaptive".to_owned(),
                    serde_json::to_value(&adaptive).map_err(anyhow::Error::from)?,
                );
            }
            if let Some(h) = &hypothetical {
                obj.insert(
                    "f64_release".to_owned(),
                    serde_json::to_value(h).map_err(anyhow::Error::from)?,
                );
            }
            obj.insert("seed".to_owned(), args.seed.into());
            obj.insert(
                "dataset".to_owned(),
                serde_json::to_value(data.dataset).map_err(anyhow::Error::from)?,
            );
            obj.insert("data_source".to_owned(), data.source.label().into());
            obj.insert("model".to_owned(), model_label.into());
            obj.insert("total_seconds".to_owned(), attack_seconds.into());
        }
        write_json(path, &out)?;
    }
    Ok(())
}

/// The outcome of one attack; for the passive CKKS adversary, also that of a release of
/// full `f64` values (without a service); for the adaptive active one, the outcome after
/// each budget (the last is the main outcome).
type Attacked = (Outcome, Option<Outcome>, Vec<Outcome>);

/// Runs the chosen adversary on the chosen scheme.
fn attack(
    args: &KeyRecoveryArgs,
    model: &Model,
    train: &crate::data::Images,
    filler: &[crate::oracle::Image],
    victim: &[crate::oracle::Image],
) -> anyhow::Result<Attacked> {
    let mut rng = ChaCha20Rng::seed_from_u64(args.seed);
    let release = args.release;
    if !args.adaptive.is_empty()
        && (args.scheme, args.adversary) != (KeyScheme::Ckks, Adversary::Active)
    {
        anyhow::bail!("--adaptive is an active CKKS adversary (--scheme ckks --adversary active)");
    }
    if (args.unchecked || args.probes.is_some())
        && (args.scheme, args.adversary) != (KeyScheme::Bfv, Adversary::Active)
    {
        anyhow::bail!(
            "--unchecked and --probes are for the active BFV adversary (--scheme bfv --adversary active)"
        );
    }
    let (outcome, hypothetical) = match (args.scheme, args.adversary) {
        (KeyScheme::Ckks, Adversary::Active) if !args.adaptive.is_empty() => {
            let plan = calibrated_ckks_plan(model, train)?;
            let mut outcomes =
                active::ckks_adaptive(&plan, release, &args.adaptive, filler, victim, &mut rng)?;
            let last = outcomes
                .pop()
                .ok_or_else(|| anyhow::anyhow!("--adaptive needs a budget"))?;
            return Ok((
                last.clone(),
                None,
                outcomes.into_iter().chain([last]).collect(),
            ));
        }
        (KeyScheme::Ckks, Adversary::Active) => {
            let plan = calibrated_ckks_plan(model, train)?;
            (
                active::ckks(&plan, release, args.amplify, filler, victim, &mut rng)?,
                None,
            )
        }
        (KeyScheme::Ckks, Adversary::Passive) => {
            let plan = calibrated_ckks_plan(model, train)?;
            let f64_release = passive::ckks_f64(&plan, filler, victim, &mut rng)?;
            (
                passive::ckks(&plan, release, filler, victim, &mut rng)?,
                Some(f64_release),
            )
        }
        (KeyScheme::Bfv, Adversary::Active) => {
            let (quant, plan) = bfv_plan(model)?;
            let calibration = calibration_images(train)?;
            let party = active::BfvParty {
                release,
                checks: (!args.unchecked).then_some(calibration.as_slice()),
            };
            let outcome = match args.probes {
                Some(probes) => {
                    let bar = Progress::bar("probes", probes as u64);
                    let probed = active::bfv_probing(
                        &quant,
                        &plan,
                        party,
                        probes,
                        filler,
                        &mut rng,
                        &mut |done, released| {
                            bar.position(done as u64, format!("{released} released"));
                        },
                    );
                    bar.finish();
                    probed?
                }
                None => active::bfv(&quant, &plan, party, filler, victim, &mut rng)?,
            };
            (outcome, None)
        }
        (KeyScheme::Bfv, Adversary::Passive) => {
            let (quant, plan) = bfv_plan(model)?;
            (
                passive::bfv(&quant, &plan, release, filler, victim, &mut rng)?,
                None,
            )
        }
    };
    Ok((outcome, hypothetical, Vec::new()))
}

/// Prints one line per figure.
fn print_outcome(o: &Outcome, f64_release: Option<&Outcome>, c: Option<&Comparison>) {
    println!(
        "{} {:?} adversary, ring degree {}, {} slots",
        o.scheme, o.adversary, o.ring_degree, o.slots
    );
    println!(
        "reply checks          {}",
        if o.reply_checks {
            "on"
        } else {
            "off (--unchecked)"
        }
    );
    println!("key recovered         {}", o.recovered);
    println!("verified on unseen    {}", o.verified_on_unseen);
    println!(
        "cost                  {} ciphertexts (gain {}{}), {} batch(es), {} refused, {} client queries, {:.2} s",
        o.ciphertexts_used,
        o.gain,
        if o.adaptive { ", adaptive" } else { "" },
        o.batches,
        o.refused_batches,
        o.client_queries,
        o.seconds
    );
    if let Some(released) = o.probes_released {
        println!(
            "probes released       {released} of {} (one slot of s each)",
            o.batches
        );
    }
    if let Some(noise) = o.noise_estimate {
        println!("noise estimate        {noise:.3e} (measured at setup)");
    }
    if o.release_sigma > 0.0 {
        println!(
            "release               {} (noise deviation {:.3e})",
            o.release, o.release_sigma
        );
    }
    if let Some(e) = o.reencoding_error {
        println!("re-encoding error     {e:.3e} (recovery needs < 0.5)");
    }
    if let Some(h) = f64_release {
        println!(
            "if f64 were released  recovered {}, verified {}, re-encoding error {:.3e}",
            h.recovered,
            h.verified_on_unseen,
            h.reencoding_error.unwrap_or(f64::NAN)
        );
    }
    if let Some(c) = c {
        println!(
            "service accuracy      {:.4} (plaintext {:.4}, agreement {:.4}, {} images)",
            c.encrypted_accuracy, c.plain_accuracy, c.agreement, c.images
        );
    }
}

/// Runs `--sweep`: the points, a table, the JSON and the figures.
fn run_sweep(
    args: &KeyRecoveryArgs,
    model: &Model,
    data: &crate::data::Data,
    (filler, victim): (&[crate::oracle::Image], &[crate::oracle::Image]),
    model_label: &str,
) -> CliResult {
    if args.scheme != KeyScheme::Ckks {
        return Err(CliError::bad_input(anyhow::anyhow!(
            "--sweep measures the CKKS release policies; BFV refuses noise (--scheme ckks)"
        )));
    }
    if args.limit == 0 {
        return Err(CliError::bad_input(anyhow::anyhow!(
            "--sweep needs test images for the accuracy (--limit K, K > 0)"
        )));
    }
    let start = Instant::now();
    let quiet = args.json.as_deref() == Some(std::path::Path::new("-"));
    let mut rng = ChaCha20Rng::seed_from_u64(args.seed);
    let plan = calibrated_ckks_plan(model, &data.train)?;
    let test = data.test.truncated(args.limit);
    let images = to_images(&test)?;
    let plain = model.predict(&crate::model::scaled(&test));
    let plain_accuracy = plain
        .iter()
        .zip(&test.labels)
        .filter(|(&p, &l)| p == usize::from(l))
        .count() as f64
        / plain.len().max(1) as f64;
    let honest = HonestScores::measure(&plan, filler, &images, &test.labels, &plain, &mut rng)
        .map_err(anyhow::Error::from)?;
    let points = sweep(
        &plan,
        &args.policies,
        &args.adaptive,
        (filler, victim),
        &honest,
        &mut rng,
    )
    .map_err(anyhow::Error::from)?;
    let (honest_batches, worst_ratio) = honest.well_formedness();
    let seconds = start.elapsed().as_secs_f64();
    if !quiet {
        println!(
            "ring degree {}, noise estimate {:.3e} (measured; the plan's bound {:.3e}), score bounds {:?}",
            plan.params().he().n(),
            honest.noise(),
            plan.predicted_error(),
            plan.score_bounds()
        );
        println!(
            "honest replies: {honest_batches} batch(es), largest deviation {worst_ratio:.3} times the estimate (refused above {WELL_FORMED_FACTOR})"
        );
        println!(
            "{:<14} {:>10} {:>10} {:>16} {:>7} {:>9} {:>9} {:>9} {:>9}",
            "release",
            "sigma",
            "gain",
            "active recovered",
            "refused",
            "re-enc",
            "passive",
            "accuracy",
            "agreement"
        );
        for p in &points {
            println!(
                "{:<14} {:>10.3e} {:>10.3e} {:>16} {:>7} {:>9.3} {:>9} {:>9.4} {:>9.4}",
                p.release,
                p.sigma,
                p.active.gain as f64,
                p.active.recovered && p.active.verified_on_unseen,
                p.active.refused_batches,
                p.active.reencoding_error.unwrap_or(f64::NAN),
                p.passive.recovered && p.passive.verified_on_unseen,
                p.accuracy,
                p.agreement
            );
        }
        if !args.adaptive.is_empty() {
            println!(
                "{:<14} {:>7} {:>10} {:>8} {:>16} {:>9}",
                "adaptive", "batches", "gain", "refused", "recovered", "re-enc"
            );
            for p in &points {
                for o in &p.adaptive {
                    println!(
                        "{:<14} {:>7} {:>10.3e} {:>8} {:>16} {:>9.3}",
                        p.release,
                        o.batches,
                        o.gain as f64,
                        o.refused_batches,
                        o.recovered && o.verified_on_unseen,
                        o.reencoding_error.unwrap_or(f64::NAN)
                    );
                }
            }
        }
        println!(
            "plaintext accuracy {plain_accuracy:.4} on {} images; {seconds:.1} s",
            images.len()
        );
    }
    if let Some(dir) = &args.out {
        sweep_figures(dir, &points)?;
    }
    if let Some(path) = &args.json {
        let out = serde_json::json!({
            "scheme": "ckks",
            "sweep": points,
            "noise_estimate": honest.noise(),
            "predicted_error": plan.predicted_error(),
            "score_bounds": plan.score_bounds(),
            "well_formed_factor": WELL_FORMED_FACTOR,
            "honest_batches": honest_batches,
            "honest_worst_ratio": worst_ratio,
            "ring_degree": plan.params().he().n(),
            "images": images.len(),
            "plain_accuracy": plain_accuracy,
            "seed": args.seed,
            "dataset": serde_json::to_value(data.dataset).map_err(anyhow::Error::from)?,
            "data_source": data.source.label(),
            "model": model_label,
            "total_seconds": seconds,
        });
        write_json(path, &out)?;
    }
    Ok(())
}

/// 1 for a key recovered and verified, 0 otherwise.
fn success(o: &Outcome) -> f64 {
    f64::from(u8::from(o.recovered && o.verified_on_unseen))
}

/// `sweep-noise.png` (against the deviation, log axis) and `sweep-rounding.png` (against
/// the rounding bits) in `dir`.
fn sweep_figures(dir: &std::path::Path, points: &[SweepPoint]) -> CliResult {
    std::fs::create_dir_all(dir).map_err(|e| CliError::bad_input(anyhow::Error::from(e)))?;
    let series = |x: &dyn Fn(&SweepPoint) -> Option<f64>| -> Vec<Series> {
        let curve = |label: &str, y: &dyn Fn(&SweepPoint) -> f64| Series {
            label: label.to_owned(),
            points: points.iter().filter_map(|p| Some((x(p)?, y(p)))).collect(),
        };
        vec![
            curve("active (amplified) recovers", &|p| success(&p.active)),
            curve("active (adaptive, largest budget) recovers", &|p| {
                p.adaptive.last().map_or(0.0, success)
            }),
            curve("passive recovers", &|p| success(&p.passive)),
            curve("accuracy", &|p| p.accuracy),
            curve("agreement with plaintext", &|p| p.agreement),
        ]
    };
    let noise = LineChart {
        title: "Key recovery and accuracy against release noise (CKKS)".to_owned(),
        x_label: "noise deviation sigma".to_owned(),
        y_label: "success (0/1), accuracy, agreement".to_owned(),
        series: series(&|p| (p.sigma > 0.0).then_some(p.sigma)),
        x_log: true,
        y_log: false,
        x_range: None,
        y_range: Some((0.0, 1.05)),
    };
    let rounding = LineChart {
        title: "Key recovery and accuracy against release rounding (CKKS)".to_owned(),
        x_label: "rounding bits b (step 2^-b)".to_owned(),
        series: series(&|p| (p.step > 0.0).then(|| -p.step.log2())),
        x_log: false,
        ..noise.clone()
    };
    for (chart, name) in [(noise, "sweep-noise.png"), (rounding, "sweep-rounding.png")] {
        if chart.series.iter().any(|s| !s.points.is_empty()) {
            chart
                .write_png(&dir.join(name))
                .map_err(|e| CliError::Failure(anyhow::Error::from(e)))?;
        }
    }
    Ok(())
}
