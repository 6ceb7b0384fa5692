//! `heist attack reconstruction`: the paper's Table 5 and Figure 4 (attack 2), with
//! baselines, intervals and query counts.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::super::exit::{write_json, CliError, CliResult};
use super::super::options::{use_threads, DataOptions, ModelOptions};
use crate::attack::metrics::Estimate;
use crate::attack::reconstruction::generator::{GeneratorConfig, GeneratorKind, InputPrep};
use crate::attack::reconstruction::inversion::InversionConfig;
use crate::attack::reconstruction::{paper_table5, run, CurvePoint, Outcome, Settings};
use crate::data::{CLASSES, IMAGE_SIDE};
use crate::inference::OracleSpec;

use crate::oracle::Image;

/// Reconstruct private training images from the scores the service releases.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    heist attack reconstruction --dataset mnist --json recon.json --out recon-mnist\n  \
    heist attack reconstruction --dataset fashion --oracle plain --input log-softmax --curves")]
pub struct ReconstructionArgs {
    #[command(flatten)]
    data: DataOptions,
    /// Where the target's scores come from: plain, ckks, bfv (in-process service) or
    /// tcp://HOST:PORT (a running trusted party).
    #[arg(long, default_value = "ckks")]
    oracle: OracleSpec,
    #[command(flatten)]
    model: ModelOptions,
    /// Auxiliary queries: the first N test images (default: 10,000 or all there are).
    #[arg(long, value_name = "N")]
    aux: Option<usize>,
    /// Private training images to reconstruct (drawn with --seed).
    #[arg(long, value_name = "K", default_value_t = 1000)]
    targets: usize,
    /// The inverse generator.
    #[arg(long, value_enum, default_value = "mlp")]
    generator: GeneratorKind,
    /// How the released scores are fed to the generator.
    #[arg(long, value_enum, default_value = "raw")]
    input: InputPrep,
    /// Passes of the generator over the auxiliary pairs.
    #[arg(long, default_value_t = 30)]
    generator_epochs: usize,
    /// Also measure quality against the number of auxiliary queries and against the
    /// rounding of the released scores (trains ten more generators).
    #[arg(long)]
    curves: bool,
    /// Also run the per-class model inversion (Fredrikson et al.) through the oracle.
    #[arg(long)]
    inversion: bool,
    /// Iterations of the model inversion, per class.
    #[arg(long, default_value_t = 100)]
    inversion_iterations: usize,
    /// Random directions per iteration of the model inversion (two queries each).
    #[arg(long, default_value_t = 20)]
    inversion_directions: usize,
    /// Seed of the target draw, the generator, the evaluator and the bootstrap.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Also write the results as JSON to this file (`-` for stdout, which then holds only
    /// the JSON).
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Directory for `reconstructions.safetensors`, `figure4.png` and, with --curves,
    /// `curve_aux_queries.png` and `curve_release.png` (SSIM at data range 1 from 0 to 1,
    /// 95 % intervals as bars, the class-mean baseline dashed; no text: the numbers are in
    /// the table and the JSON).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// `mean [low, high]`.
fn ci(e: &Estimate, digits: usize) -> String {
    format!("{:.d$} [{:.d$}, {:.d$}]", e.mean, e.low, e.high, d = digits)
}

/// The printed report: Table 5 in the paper's layout, then every method, then the curves.
fn table(
    outcome: &Outcome,
    header: &str,
    paper: &crate::attack::reconstruction::PaperRow,
) -> String {
    let mut t = String::new();
    let g = &outcome.methods[0].quality;
    t.push_str(header);
    t.push_str("\nTable 5          base-line acc.          re-classification acc.  SSIM (range 1)          SSIM (range 255)\n");
    t.push_str(&format!(
        "paper            {:<23} {:<23} {:<23} {:.3} (paper's convention)\n",
        format!("{:.3}", paper.baseline_accuracy),
        format!("{:.3}", paper.reclassification_accuracy),
        "not reported",
        paper.ssim
    ));
    t.push_str(&format!(
        "heist            {:<23} {:<23} {:<23} {}\n",
        ci(&outcome.baseline_accuracy, 3),
        ci(&g.reclassification_accuracy, 3),
        ci(&g.ssim, 3),
        ci(&g.ssim_data_range_255, 4)
    ));
    t.push_str("\nmethod       SSIM (range 1)         SSIM (255)  PSNR dB                MSE     re-class. target       re-class. evaluator\n");
    for m in &outcome.methods {
        let q = &m.quality;
        t.push_str(&format!(
            "{:<12} {:<22} {:<11.4} {:<22} {:<7.4} {:<22} {}\n",
            m.method,
            ci(&q.ssim, 3),
            q.ssim_data_range_255.mean,
            ci(&q.psnr, 2),
            q.mse.mean,
            ci(&q.reclassification_accuracy, 3),
            ci(&q.evaluator_reclassification_accuracy, 3)
        ));
    }
    t.push_str(&format!(
        "generator above every baseline (SSIM and PSNR intervals disjoint): {}\n",
        if outcome.beats_every_baseline {
            "yes"
        } else {
            "no"
        }
    ));
    let curve = |t: &mut String, title: &str, points: &[CurvePoint]| {
        if points.is_empty() {
            return;
        }
        t.push_str(&format!("\n{title}\naux     release  epochs  SSIM (range 1)         PSNR dB                re-class. target\n"));
        for p in points {
            t.push_str(&format!(
                "{:<7} {:<8} {:<7} {:<22} {:<22} {}\n",
                p.aux,
                p.release,
                p.epochs,
                ci(&p.quality.ssim, 3),
                ci(&p.quality.psnr, 2),
                ci(&p.quality.reclassification_accuracy, 3)
            ));
        }
    };
    if let Some(inv) = &outcome.inversion {
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        t.push_str(&format!(
            "\nmodel inversion per class (Fredrikson et al., zeroth-order, {} queries): classified as its class by the target {:.1}, by the evaluator {:.1}; mean oracle confidence {:.3}; SSIM to the class-mean image {:.3} (starting mean image: {:.3})\n",
            inv.queries,
            inv.target_accuracy,
            inv.evaluator_accuracy,
            mean(&inv.confidence),
            mean(&inv.ssim_to_class_mean),
            mean(&inv.prior_ssim_to_class_mean)
        ));
    }
    curve(
        &mut t,
        "quality against auxiliary queries",
        &outcome.aux_curve,
    );
    curve(
        &mut t,
        "quality against the released precision",
        &outcome.release_curve,
    );
    t
}

/// `original` and `reconstruction`, both `[K, 28, 28]` little-endian f32 in [0, 1].
fn write_safetensors(path: &Path, outcome: &Outcome) -> anyhow::Result<()> {
    let bytes = |images: &[Image]| -> Vec<u8> {
        images
            .iter()
            .flat_map(|i| i.pixels().iter().flat_map(|p| p.to_le_bytes()))
            .collect()
    };
    let (original, reconstruction) = (bytes(&outcome.originals), bytes(&outcome.reconstructions));
    let shape = vec![outcome.originals.len(), IMAGE_SIDE, IMAGE_SIDE];
    let views = [("original", &original), ("reconstruction", &reconstruction)]
        .into_iter()
        .map(|(name, data)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), data)
                .map(|v| (name.to_owned(), v))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let file = safetensors::serialize(views, &None)?;
    std::fs::write(path, file).with_context(|| format!("writing {}", path.display()))
}

/// Figure 4: for each class, up to `per_class` targets of that class, each original above
/// its reconstruction; classes are columns.
fn write_figure(path: &Path, outcome: &Outcome, per_class: usize) -> anyhow::Result<()> {
    let mut columns: Vec<Vec<usize>> = vec![Vec::new(); CLASSES];
    for (i, &label) in outcome.labels.iter().enumerate() {
        let column = &mut columns[usize::from(label)];
        if column.len() < per_class {
            column.push(i);
        }
    }
    let mut rows: Vec<Vec<Option<&Image>>> = Vec::new();
    for r in 0..per_class {
        for images in [&outcome.originals, &outcome.reconstructions] {
            rows.push(
                columns
                    .iter()
                    .map(|c| c.get(r).map(|&i| &images[i]))
                    .collect(),
            );
        }
    }
    write_grid(path, &rows)
}

/// A grid of images (dark ink on white, like the paper's figures), 2-pixel white gaps, no
/// text; `None` leaves a cell blank.
fn write_grid(path: &Path, rows: &[Vec<Option<&Image>>]) -> anyhow::Result<()> {
    let (gap, side) = (2u32, IMAGE_SIDE as u32);
    let cell = side + gap;
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0) as u32;
    let (width, height) = (columns * cell + gap, rows.len() as u32 * cell + gap);
    let mut img = image::GrayImage::from_pixel(width, height, image::Luma([255]));
    for (r, row) in rows.iter().enumerate() {
        for (c, source) in row.iter().enumerate() {
            let Some(source) = source else { continue };
            let (x0, y0) = (gap + c as u32 * cell, gap + r as u32 * cell);
            for (p, &v) in source.pixels().iter().enumerate() {
                let (x, y) = ((p % IMAGE_SIDE) as u32, (p / IMAGE_SIDE) as u32);
                let ink = (255.0 - 255.0 * v.clamp(0.0, 1.0)).round() as u8;
                img.put_pixel(x0 + x, y0 + y, image::Luma([ink]));
            }
        }
    }
    img.save_with_format(path, image::ImageFormat::Png)
        .with_context(|| format!("writing {}", path.display()))
}

/// A curve without text: SSIM (data range 1, y from 0 at the bottom to 1 at the top)
/// against evenly spaced points (left to right in the order given); black line through the
/// means, grey bars for the 95 % intervals, a dashed grey line at the class-mean baseline.
fn write_curve(path: &Path, points: &[CurvePoint], baseline: f64) -> anyhow::Result<()> {
    let (w, h, margin) = (320u32, 240u32, 20u32);
    let mut img = image::GrayImage::from_pixel(w, h, image::Luma([255]));
    let (plot_w, plot_h) = (w - 2 * margin, h - 2 * margin);
    let x_of =
        |i: usize| margin + (i as u32 * plot_w) / (points.len().saturating_sub(1).max(1)) as u32;
    let y_of = |v: f64| margin + plot_h - (v.clamp(0.0, 1.0) * f64::from(plot_h)).round() as u32;
    for x in margin..=margin + plot_w {
        img.put_pixel(x, margin + plot_h, image::Luma([0]));
        if x % 6 < 3 {
            img.put_pixel(x, y_of(baseline), image::Luma([150]));
        }
    }
    for y in margin..=margin + plot_h {
        img.put_pixel(margin, y, image::Luma([0]));
    }
    let mut previous: Option<(u32, u32)> = None;
    for (i, p) in points.iter().enumerate() {
        let x = x_of(i);
        for y in y_of(p.quality.ssim.high)..=y_of(p.quality.ssim.low) {
            for dx in 0..3 {
                img.put_pixel((x + dx).saturating_sub(1), y, image::Luma([170]));
            }
        }
        let y = y_of(p.quality.ssim.mean);
        if let Some((x0, y0)) = previous {
            let steps = (x - x0).max(1);
            for s in 0..=steps {
                let yy = f64::from(y0)
                    + (f64::from(y) - f64::from(y0)) * f64::from(s) / f64::from(steps);
                img.put_pixel(x0 + s, yy.round() as u32, image::Luma([0]));
            }
        }
        for (dx, dy) in (0..5).flat_map(|a| (0..5).map(move |b| (a, b))) {
            img.put_pixel(
                (x + dx).saturating_sub(2),
                (y + dy).saturating_sub(2),
                image::Luma([0]),
            );
        }
        previous = Some((x, y));
    }
    img.save_with_format(path, image::ImageFormat::Png)
        .with_context(|| format!("writing {}", path.display()))
}

/// Runs `heist attack reconstruction`.
///
/// # Errors
/// Bad input (exit 2) for unusable data, models or settings; failure (exit 1) otherwise.
pub fn run_reconstruction(args: ReconstructionArgs) -> CliResult {
    use_threads(args.threads)?;
    let data = args.data.load().map_err(CliError::bad_input)?;
    let resolved = args.model.resolve(&data, args.seed)?;
    let (model, model_name) = (resolved.model, resolved.path.display().to_string());
    let settings = Settings {
        aux: args.aux.unwrap_or(data.test.len().min(10_000)),
        targets: args.targets,
        generator: {
            let mut g = GeneratorConfig::new(args.generator, args.input, args.seed);
            g.fit.epochs = args.generator_epochs;
            g
        },
        seed: args.seed,
        curves: args.curves,
        inversion: args.inversion.then(|| {
            let mut config = InversionConfig::new(args.seed);
            config.iterations = args.inversion_iterations;
            config.directions = args.inversion_directions;
            config
        }),
    };
    settings
        .validate(&data.train, &data.test)
        .map_err(CliError::bad_input)?;
    let mut oracle = args
        .oracle
        .open(&model, &data.train)
        .map_err(CliError::Failure)?;
    let outcome = run(&mut oracle, &model, &data.train, &data.test, &settings)
        .map_err(|e| CliError::Failure(e.into()))?;
    let paper = paper_table5(data.dataset);
    let header = format!(
        "{} ({}), model {}: {} private training images; {} queries ({} auxiliary + {} target) through {}{}; {:?} generator, {:?} input; {:.1} s",
        data.dataset,
        data.source.label(),
        model_name,
        outcome.settings.targets,
        outcome.queries,
        outcome.settings.aux,
        outcome.settings.targets,
        args.oracle,
        if args.oracle.encrypted() { " (encrypted)" } else { " (plaintext)" },
        args.generator,
        args.input,
        outcome.seconds
    );
    let text = table(&outcome, &header, &paper);
    let json_to_stdout = args.json.as_deref() == Some(Path::new("-"));
    if json_to_stdout {
        eprint!("{text}");
    } else {
        print!("{text}");
    }
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        write_safetensors(&dir.join("reconstructions.safetensors"), &outcome)?;
        write_figure(&dir.join("figure4.png"), &outcome, 4)?;
        if let Some(inv) = &outcome.inversion {
            write_grid(
                &dir.join("inversion.png"),
                &[inv.images.iter().map(Some).collect()],
            )?;
        }
        let class_mean = outcome.method("class_mean").map_or(0.0, |q| q.ssim.mean);
        for (name, points) in [
            ("curve_aux_queries.png", &outcome.aux_curve),
            ("curve_release.png", &outcome.release_curve),
        ] {
            if !points.is_empty() {
                write_curve(&dir.join(name), points, class_mean)?;
            }
        }
    }
    if let Some(path) = &args.json {
        let q = |m: &str| outcome.method(m).copied();
        let (g, class_mean, nearest, global) = (
            q("generator"),
            q("class_mean"),
            q("nearest_aux"),
            q("global_mean"),
        );
        let mean = |e: Option<Estimate>| e.map(|e| e.mean);
        let interval = |e: Option<Estimate>| e.map(|e| e.interval());
        let summary = serde_json::json!({
            "dataset": data.dataset,
            "data_source": data.source.label(),
            "model": model_name,
            "oracle": args.oracle.to_string(),
            "encrypted": args.oracle.encrypted(),
            "queries": outcome.queries,
            "aux": outcome.settings.aux,
            "targets": outcome.settings.targets,
            "generator": args.generator,
            "input": args.input,
            "seed": args.seed,
            "baseline_accuracy": outcome.baseline_accuracy.mean,
            "baseline_accuracy_ci": outcome.baseline_accuracy.interval(),
            "reclassification_accuracy": mean(g.map(|g| g.reclassification_accuracy)),
            "reclassification_accuracy_ci": interval(g.map(|g| g.reclassification_accuracy)),
            "evaluator_reclassification_accuracy": mean(g.map(|g| g.evaluator_reclassification_accuracy)),
            "evaluator_reclassification_accuracy_ci": interval(g.map(|g| g.evaluator_reclassification_accuracy)),
            "ssim": mean(g.map(|g| g.ssim)),
            "ssim_ci": interval(g.map(|g| g.ssim)),
            "ssim_data_range_255": mean(g.map(|g| g.ssim_data_range_255)),
            "ssim_data_range_255_ci": interval(g.map(|g| g.ssim_data_range_255)),
            "psnr": mean(g.map(|g| g.psnr)),
            "psnr_ci": interval(g.map(|g| g.psnr)),
            "mse": mean(g.map(|g| g.mse)),
            "class_mean_ssim": mean(class_mean.map(|q| q.ssim)),
            "class_mean_ssim_ci": interval(class_mean.map(|q| q.ssim)),
            "class_mean_psnr": mean(class_mean.map(|q| q.psnr)),
            "class_mean_psnr_ci": interval(class_mean.map(|q| q.psnr)),
            "class_mean_reclassification_accuracy": mean(class_mean.map(|q| q.reclassification_accuracy)),
            "nearest_aux_ssim": mean(nearest.map(|q| q.ssim)),
            "nearest_aux_ssim_ci": interval(nearest.map(|q| q.ssim)),
            "nearest_aux_psnr": mean(nearest.map(|q| q.psnr)),
            "nearest_aux_psnr_ci": interval(nearest.map(|q| q.psnr)),
            "global_mean_ssim": mean(global.map(|q| q.ssim)),
            "global_mean_psnr": mean(global.map(|q| q.psnr)),
            "beats_every_baseline": outcome.beats_every_baseline,
            "paper": paper,
            "seconds": outcome.seconds,
            "threads": rayon::current_num_threads(),
            "details": outcome,
        });
        write_json(path, &summary)?;
    }
    Ok(())
}
