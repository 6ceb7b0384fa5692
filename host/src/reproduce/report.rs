//! `results.json` and `report.md` from the stages' JSON.
//!
//! `results.json` holds, under each [`Section::key`], the JSON every stage's command wrote,
//! placed at the stage's entry (`table4.mnist`, `table3.mnist.train`, …), so each table
//! holds exactly what the attack commands' own JSON holds. The report reads nothing else.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::{paper, Config, Section, Stage};
use crate::data::Dataset;

/// How long a stage took, and whether it ran now or came from an earlier run.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Timing {
    /// The stage's id.
    pub stage: String,
    /// Its wall time in this run (0 when reused).
    pub seconds: f64,
    /// Whether its JSON came from an earlier run.
    pub reused: bool,
}

/// Why the results could not be gathered.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A stage's JSON is missing or unreadable.
    #[error("stage {stage}: {path}: {message}")]
    Stage {
        /// The stage.
        stage: String,
        /// Its JSON file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// Reads every finished stage's JSON under `out` and places it in its section, beside the
/// run's settings, the data source (`embedded-subset` when any stage ran on it), the
/// timings and the ids of the stages not finished (`missing_stages`, empty after a full
/// run).
///
/// # Errors
/// [`ReportError::Stage`] when a finished stage's JSON cannot be read or parsed.
pub fn gather(
    config: &Config,
    stages: &[Stage],
    out: &Path,
    timings: &[Timing],
    wall: f64,
    environment: Value,
) -> Result<Value, ReportError> {
    let mut results = Map::new();
    for section in Section::ALL {
        results.insert(section.key().into(), Value::Object(Map::new()));
    }
    let mut sources = Vec::new();
    let mut missing = Vec::new();
    for stage in stages {
        if !stage.is_done(out) {
            missing.push(stage.id.clone());
            continue;
        }
        let path = stage.json_path(out);
        let failed = |message: String| ReportError::Stage {
            stage: stage.id.clone(),
            path: path.clone(),
            message,
        };
        let text = std::fs::read_to_string(&path).map_err(|e| failed(e.to_string()))?;
        let mut value: Value = serde_json::from_str(&text).map_err(|e| failed(e.to_string()))?;
        if let Some(source) = value.get("data_source").and_then(Value::as_str) {
            sources.push(source.to_string());
        }
        if let Some(obj) = value.as_object_mut() {
            obj.insert("command".into(), command_text(stage).into());
            if stage.figures {
                obj.insert(
                    "figures".into(),
                    figures(out, &stage.figures_dir())
                        .iter()
                        .map(|p| Value::from(p.display().to_string()))
                        .collect::<Vec<_>>()
                        .into(),
                );
            }
        }
        let mut slot = results
            .get_mut(stage.section.key())
            .and_then(Value::as_object_mut)
            .ok_or_else(|| failed("section missing".into()))?;
        let parts: Vec<&str> = stage.entry.split('/').collect();
        for (k, part) in parts.iter().enumerate() {
            if k + 1 == parts.len() {
                slot.insert((*part).to_string(), value);
                break;
            }
            slot = slot
                .entry((*part).to_string())
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
                .ok_or_else(|| failed(format!("entry {} is not an object", stage.entry)))?;
        }
    }
    sources.sort_unstable();
    sources.dedup();
    let data_source = if sources.iter().any(|s| s == "embedded-subset") {
        "embedded-subset"
    } else {
        "canonical"
    };
    results.insert("data_source".into(), data_source.into());
    results.insert("missing_stages".into(), missing.into());
    results.insert(
        "settings".into(),
        json!({
            "config": config,
            "version": env!("CARGO_PKG_VERSION"),
            "environment": environment,
            "datasets": config.datasets.iter().map(|d| json!({
                "dataset": d,
                "canonical_checksum": d.checksum(),
            })).collect::<Vec<_>>(),
            "stages": stages.iter().map(|s| json!({
                "id": s.id,
                "section": s.section,
                "entry": s.entry,
                "command": command_text(s),
                "key": s.key(),
                "after": s.after,
            })).collect::<Vec<_>>(),
        }),
    );
    results.insert(
        "seconds".into(),
        json!({
            "total": timings.iter().fold(0.0, |sum, t| sum + t.seconds),
            "wall": wall,
            "stages": timings,
        }),
    );
    Ok(Value::Object(results))
}

/// The stage's command as a reader would type it (without `--json`/`--out`).
pub fn command_text(stage: &Stage) -> String {
    std::iter::once("heist")
        .chain(stage.args.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The PNG files under `out/dir`, relative to `out`, sorted.
fn figures(out: &Path, dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(out.join(dir)) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .filter_map(|p| p.file_name().map(|n| dir.join(n)))
        .collect();
    files.sort();
    files
}

/// A number at `pointer` in `v`.
fn num(v: &Value, pointer: &str) -> Option<f64> {
    v.pointer(pointer).and_then(Value::as_f64)
}

/// "heist (paper, ±difference)", or what of it exists.
fn cell(ours: Option<f64>, paper: Option<f64>) -> String {
    match (ours, paper) {
        (Some(o), Some(p)) => format!("{o:.3} ({p:.3}, {:+.3})", o - p),
        (Some(o), None) => format!("{o:.3}"),
        (None, Some(p)) => format!("— ({p:.3})"),
        (None, None) => "—".into(),
    }
}

/// A Markdown table.
fn table(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(header.len()));
    for row in rows {
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
    out.push('\n');
}

/// The figures a stage's JSON lists, embedded.
fn embed(out: &mut String, stage_json: &Value) {
    for figure in stage_json
        .get("figures")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        let name = Path::new(figure)
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        let _ = writeln!(out, "![{name}]({figure})\n");
    }
}

/// The commands of the stages under `section`'s value, as a list.
fn commands(out: &mut String, section: &Value) {
    let mut found = Vec::new();
    collect_commands(section, &mut found);
    if !found.is_empty() {
        out.push_str("Commands:\n\n");
        for c in found {
            let _ = writeln!(out, "- `{c}`");
        }
        out.push('\n');
    }
}

fn collect_commands(v: &Value, found: &mut Vec<String>) {
    if let Some(obj) = v.as_object() {
        if let Some(c) = obj.get("command").and_then(Value::as_str) {
            found.push(c.to_string());
            return;
        }
        for child in obj.values() {
            collect_commands(child, found);
        }
    }
}

fn datasets(results: &Value) -> Vec<Dataset> {
    let mut found = Vec::new();
    for d in [Dataset::Mnist, Dataset::Fashion] {
        if results.pointer(&format!("/table4/{d}")).is_some()
            || results.pointer(&format!("/table3/{d}")).is_some()
        {
            found.push(d);
        }
    }
    found
}

/// `report.md`: the paper's tables in its layout with every cell "heist (paper,
/// difference)", the definitions and settings, the sections beyond the paper, and the
/// answer to its question.
pub fn markdown(results: &Value) -> String {
    let mut out = String::new();
    let data_source = results
        .get("data_source")
        .and_then(Value::as_str)
        .unwrap_or("?");
    out.push_str("# Is HE-based deep learning secure enough? A reproduction\n\n");
    if data_source == "embedded-subset" {
        out.push_str(
            "> **NOTICE: these results were computed on the small embedded subset (2,000 \
             training and 1,000 test images per data set), not on the canonical data. They \
             show that the pipeline runs; they are not a reproduction of the paper's figures.**\n\n",
        );
    }
    let missing: Vec<&str> = results
        .get("missing_stages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !missing.is_empty() {
        let _ = writeln!(
            out,
            "> **INCOMPLETE: {} stage(s) have not finished and their cells read —: {}.**\n",
            missing.len(),
            missing.join(", ")
        );
    }
    let quick = is_quick(results);
    let _ = writeln!(
        out,
        "Every cell reads **heist (paper, difference)**. Every query to a target went through \
         the encrypted three-party service ({}). Data: {data_source}{}.\n",
        results
            .pointer("/settings/config/scheme")
            .and_then(Value::as_str)
            .unwrap_or("ckks"),
        if quick {
            "; `--quick` settings (small samples)"
        } else {
            ""
        }
    );
    let sets = datasets(results);
    table3(&mut out, results, &sets);
    table4(&mut out, results, &sets);
    table5(&mut out, results, &sets);
    membership(&mut out, results, &sets);
    key_recovery(&mut out, results);
    definitions(&mut out, results);
    answer(&mut out, results, &sets);
    out
}

/// Whether the results come from a `--quick` run.
fn is_quick(results: &Value) -> bool {
    results
        .pointer("/settings/config/quick")
        .and_then(Value::as_bool)
        == Some(true)
}

fn table3(out: &mut String, results: &Value, sets: &[Dataset]) {
    out.push_str("## Table 3: baseline accuracy of the targets\n\n");
    let mut rows = Vec::new();
    for &d in sets {
        let (train, test) = paper::table3(d);
        let base = format!("/table3/{d}");
        let other = results
            .pointer(&base)
            .and_then(Value::as_object)
            .and_then(|o| {
                o.iter()
                    .find(|(k, _)| k.starts_with("test-"))
                    .map(|(_, v)| v)
            });
        rows.push(vec![
            d.to_string(),
            cell(
                num(results, &format!("{base}/train/encrypted_accuracy")),
                Some(train),
            ),
            cell(
                num(results, &format!("{base}/test/encrypted_accuracy")),
                Some(test),
            ),
            cell(num(results, &format!("{base}/test/plain_accuracy")), None),
            cell(num(results, &format!("{base}/test/agreement")), None),
            other.map_or_else(
                || {
                    // A quick run leaves out MNIST's BFV batch (16,384 slots, about 50 s).
                    if is_quick(results) {
                        "— (not in a quick run)"
                    } else {
                        "—"
                    }
                    .into()
                },
                |o| {
                    format!(
                        "{} {:.4} on {} images",
                        o.get("scheme").and_then(Value::as_str).unwrap_or("?"),
                        num(o, "/agreement").unwrap_or(f64::NAN),
                        num(o, "/images").unwrap_or(0.0)
                    )
                },
            ),
        ]);
    }
    table(
        out,
        &[
            "Model",
            "Train (encrypted)",
            "Test (encrypted)",
            "Test (plaintext twin)",
            "encrypted/plain agreement",
            "other scheme's agreement",
        ],
        &rows,
    );
    if let Some(t) = results.pointer("/table3") {
        commands(out, t);
    }
}

fn table4(out: &mut String, results: &Value, sets: &[Dataset]) {
    out.push_str("## Table 4: accuracy under adversarial examples (ε = 0.3)\n\n");
    let mut rows = Vec::new();
    let mut beyond = Vec::new();
    for &d in sets {
        let p = paper::table4(d);
        let v = |key: &str| num(results, &format!("/table4/{d}/{key}"));
        let pp = |k: usize| p.map(|c| c[k]);
        rows.push(vec![
            d.to_string(),
            cell(v("clean_accuracy"), pp(0)),
            cell(v("fgsm_accuracy"), pp(1)),
            cell(v("bim_accuracy"), pp(2)),
            cell(v("cw_accuracy"), pp(3)),
        ]);
        beyond.push(vec![
            d.to_string(),
            cell(v("pgd_accuracy"), None),
            cell(v("cw_projected_accuracy"), None),
            v("cw_mean_l2").map_or_else(|| "—".into(), |x| format!("{x:.3}")),
            cell(v("square_accuracy"), None),
            v("square_queries_per_image").map_or_else(|| "—".into(), |x| format!("{x:.1}")),
            cell(v("transfer_accuracy"), None),
            cell(v("encrypted_plain_agreement"), None),
            v("images").map_or_else(|| "—".into(), |x| format!("{x:.0}")),
        ]);
    }
    table(out, &["Model", "None", "FGSM", "BIM", "C&W"], &rows);
    out.push_str(
        "The paper's C&W column is compared with heist's unbounded C&W-L2 (no ε applies to \
         it); projected onto L∞ ≤ ε it is the `C&W projected` column below.\n\n\
         Beyond the paper (black-box attacks need no weights; every query encrypted):\n\n",
    );
    table(
        out,
        &[
            "Model",
            "PGD",
            "C&W projected",
            "C&W mean L2",
            "Square (black box)",
            "Square queries/image",
            "Transfer (black box)",
            "encrypted/plain agreement on adversarial images",
            "test images",
        ],
        &beyond,
    );
    for &d in sets {
        if let Some(v) = results.pointer(&format!("/table4/{d}")) {
            embed(out, v);
        }
    }
    if let Some(t) = results.pointer("/table4") {
        commands(out, t);
    }
}

fn table5(out: &mut String, results: &Value, sets: &[Dataset]) {
    out.push_str("## Table 5 and Figure 4: reconstruction from released scores\n\n");
    let mut rows = Vec::new();
    let mut baselines = Vec::new();
    for &d in sets {
        let p = paper::paper_table5(d);
        let v = |key: &str| num(results, &format!("/table5/{d}/{key}"));
        rows.push(vec![
            d.to_string(),
            cell(v("baseline_accuracy"), Some(p.baseline_accuracy)),
            cell(
                v("reclassification_accuracy"),
                Some(p.reclassification_accuracy),
            ),
            cell(v("ssim_data_range_255"), Some(p.ssim)),
            cell(v("ssim"), None),
            v("psnr").map_or_else(|| "—".into(), |x| format!("{x:.2}")),
        ]);
        baselines.push(vec![
            d.to_string(),
            cell(v("ssim"), None),
            cell(v("nearest_aux_ssim"), None),
            cell(v("class_mean_ssim"), None),
            cell(v("global_mean_ssim"), None),
            results
                .pointer(&format!("/table5/{d}/beats_every_baseline"))
                .and_then(Value::as_bool)
                .map_or_else(|| "—".into(), |b| b.to_string()),
        ]);
    }
    table(
        out,
        &[
            "Model",
            "Base-line acc.",
            "Re-classification acc.",
            "SSIM (data range 255, the paper's convention)",
            "SSIM (data range 1)",
            "PSNR dB",
        ],
        &rows,
    );
    out.push_str("Against the baselines an attack must beat (SSIM, data range 1):\n\n");
    table(
        out,
        &[
            "Model",
            "generator",
            "nearest auxiliary image",
            "class mean",
            "global mean",
            "beats every baseline (disjoint 95 % intervals)",
        ],
        &baselines,
    );
    for &d in sets {
        let curve = results
            .pointer(&format!("/table5/{d}/details/release_curve"))
            .and_then(Value::as_array);
        if let Some(curve) = curve.filter(|c| !c.is_empty()) {
            let _ = writeln!(
                out,
                "Rounding the released scores ({d}): SSIM (data range 1) per release\n"
            );
            let rows: Vec<Vec<String>> = curve
                .iter()
                .map(|p| {
                    vec![
                        p.get("release")
                            .and_then(Value::as_str)
                            .unwrap_or("?")
                            .to_string(),
                        cell(num(p, "/quality/ssim/mean"), None),
                        cell(num(p, "/quality/reclassification_accuracy/mean"), None),
                    ]
                })
                .collect();
            table(out, &["release", "SSIM", "re-classification"], &rows);
        }
        if let Some(v) = results.pointer(&format!("/table5/{d}")) {
            embed(out, v);
        }
    }
    if let Some(t) = results.pointer("/table5") {
        commands(out, t);
    }
}

fn membership(out: &mut String, results: &Value, sets: &[Dataset]) {
    for &d in sets {
        let (name, figure) = match d {
            Dataset::Mnist => ("table6", 5),
            Dataset::Fashion => ("table7", 6),
        };
        let Some(v) = results.pointer(&format!("/{name}/{d}")) else {
            continue;
        };
        let _ = writeln!(
            out,
            "## Table {} and Figure {figure}: membership inference on {d} (Shokri et al., raw scores)\n",
            &name[5..]
        );
        let rows = v
            .get("shokri")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let raw: Vec<&Value> = rows
            .iter()
            .filter(|r| r.get("features").and_then(Value::as_str) == Some("raw"))
            .collect();
        let mut fractions: Vec<f64> = raw.iter().filter_map(|r| num(r, "/fraction")).collect();
        fractions.sort_by(|a, b| b.total_cmp(a));
        fractions.dedup();
        let mut shadows: Vec<u64> = raw
            .iter()
            .filter_map(|r| r.get("shadows").and_then(Value::as_u64))
            .collect();
        shadows.sort_unstable();
        shadows.dedup();
        let mut header = vec!["# Shadow".to_string(), "Phase".to_string()];
        for f in &fractions {
            for m in ["Acc.", "Rec.", "Pre."] {
                header.push(format!("{m} ({}% data)", f * 100.0));
            }
        }
        let mut lines = Vec::new();
        for &k in &shadows {
            for phase in ["train", "test"] {
                let mut line = vec![k.to_string(), phase.to_string()];
                for &f in &fractions {
                    let row = raw.iter().find(|r| {
                        r.get("shadows").and_then(Value::as_u64) == Some(k)
                            && r.get("phase").and_then(Value::as_str) == Some(phase)
                            && num(r, "/fraction").is_some_and(|x| (x - f).abs() < 1e-9)
                    });
                    for m in ["accuracy", "recall", "precision"] {
                        line.push(cell(
                            row.and_then(|r| num(r, &format!("/{m}"))),
                            row.and_then(|r| num(r, &format!("/paper/{m}"))),
                        ));
                    }
                }
                lines.push(line);
            }
        }
        let header: Vec<&str> = header.iter().map(String::as_str).collect();
        table(out, &header, &lines);
        let _ = writeln!(
            out,
            "Members {} and non-members {} (disjoint, balanced, by index); every accuracy's 95 % \
             Wilson interval is in the JSON.\n",
            num(v, "/members").unwrap_or(0.0),
            num(v, "/non_members").unwrap_or(0.0)
        );
        out.push_str("Beyond the paper: LiRA (Carlini et al. 2022) and the loss attack (Yeom et al. 2018):\n\n");
        let flag = |key: &str| {
            v.get(key)
                .and_then(Value::as_bool)
                .map_or("—".into(), |b| b.to_string())
        };
        table(
            out,
            &[
                "LiRA AUC",
                "LiRA TPR at 0.1 % FPR",
                "LiRA TPR at 1 % FPR",
                "loss AUC",
                "softmax changes the conclusion",
                "any attack beats chance at low FPR",
            ],
            &[vec![
                cell(num(v, "/lira_auc"), None),
                cell(num(v, "/lira_tpr_at_0_1pct_fpr"), None),
                cell(num(v, "/lira_tpr_at_1pct_fpr"), None),
                cell(num(v, "/loss_auc"), None),
                flag("softmax_changes_conclusion"),
                flag("any_beats_chance_at_low_fpr"),
            ]],
        );
        embed(out, v);
        commands(out, v);
    }
}

fn key_recovery(out: &mut String, results: &Value) {
    out.push_str("## Beyond the paper: recovering the secret key from released decryptions\n\n");
    let header = [
        "scheme",
        "adversary",
        "release",
        "recovered",
        "verified on unseen",
        "ciphertexts",
        "client queries",
        "seconds",
        "accuracy",
        "agreement with plaintext",
    ];
    for (title, key) in [
        (
            "Undefended (`--release exact`; the BFV trusted party without its reply checks, `--unchecked`):",
            "key_recovery",
        ),
        (
            "Under the trusted party's default release policy (the countermeasure):",
            "countermeasures",
        ),
    ] {
        let Some(section) = results.get(key).and_then(Value::as_object) else {
            continue;
        };
        let rows: Vec<Vec<String>> = section
            .values()
            .filter(|v| v.get("scheme").is_some())
            .map(|v| {
                let text = |k: &str| match v.get(k) {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Null) | None => "—".into(),
                    Some(other) => other.to_string(),
                };
                let release = match v.get("reply_checks") {
                    Some(Value::Bool(false)) => format!("{}, no reply checks", text("release")),
                    _ => text("release"),
                };
                vec![
                    text("scheme"),
                    text("adversary"),
                    release,
                    text("recovered"),
                    text("verified_on_unseen"),
                    text("ciphertexts_used"),
                    text("client_queries"),
                    num(v, "/seconds").map_or_else(|| "—".into(), |s| format!("{s:.1}")),
                    cell(num(v, "/accuracy"), None),
                    cell(num(v, "/agreement_with_plain"), None),
                ]
            })
            .collect();
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(out, "{title}\n");
        table(out, &header, &rows);
        commands(out, &Value::Object(section.clone()));
    }
}

fn definitions(out: &mut String, results: &Value) {
    out.push_str(
        "## Definitions\n\n\
         - **Accuracy** is the fraction of images whose arg-max score, as the encrypted service \
           returns it, is the true label; **agreement** the fraction whose arg-max matches the \
           plaintext model's.\n\
         - **Adversarial attacks** follow IBM ART's definitions (FGSM with sign(0) = 0; BIM = \
           PGD without random start; C&W-L2 with the tanh box and a binary search over c). \
           C&W has no ε: the paper's column corresponds to the unbounded attack; `C&W \
           projected` clips its images to L∞ ≤ ε.\n\
         - **SSIM** is scikit-image's `structural_similarity` (7×7 uniform window, K1 0.01, \
           K2 0.03) on images in [0, 1]. With data range 1 it measures resemblance; the \
           paper's figures match data range 255 on [0, 1] images, under which even the \
           global mean image scores about 0.99.\n\
         - **Membership**: members are records the target trained on, non-members test \
           records, equal in number, disjoint, recorded by index; accuracy, recall and \
           precision treat \"member\" as positive; intervals are 95 % Wilson intervals.\n\
         - **Key recovery** succeeds when the recovered secret decrypts a batch of another \
           client's that the adversary never saw.\n\n",
    );
    out.push_str("## Settings\n\n");
    if let Some(settings) = results.get("settings") {
        if let Some(env) = settings.get("environment").and_then(Value::as_object) {
            for (k, v) in env {
                let _ = writeln!(out, "- {k}: {}", plain(v));
            }
        }
        if let Some(config) = settings.get("config") {
            let _ = writeln!(out, "- configuration: `{config}`");
        }
        for d in settings
            .get("datasets")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let _ = writeln!(
                out,
                "- {}: canonical data checksum (SHA-256 over the four files' sums) `{}`",
                plain(&d["dataset"]),
                plain(&d["canonical_checksum"])
            );
        }
        out.push('\n');
    }
    if let Some(stages) = results.pointer("/seconds/stages").and_then(Value::as_array) {
        let _ = writeln!(
            out,
            "Wall time of the run: {} s, with {} stage(s) side by side. Wall time per stage:\n",
            num(results, "/seconds/wall").map_or_else(|| "—".into(), |s| format!("{s:.1}")),
            results
                .pointer("/settings/environment/stages side by side")
                .map_or_else(|| "—".into(), plain)
        );
        let rows: Vec<Vec<String>> = stages
            .iter()
            .map(|t| {
                vec![
                    plain(&t["stage"]),
                    num(t, "/seconds").map_or_else(|| "—".into(), |s| format!("{s:.1}")),
                    if t["reused"].as_bool() == Some(true) {
                        "reused".into()
                    } else {
                        "ran".into()
                    },
                ]
            })
            .collect();
        table(out, &["stage", "seconds", ""], &rows);
    }
}

/// A JSON value as text, strings without quotes.
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn answer(out: &mut String, results: &Value, sets: &[Dataset]) {
    out.push_str("## The answer to the paper's question\n\n");
    let mut exposed = Vec::new();
    for &d in sets {
        let adv = ["pgd", "bim", "fgsm", "cw"]
            .iter()
            .filter_map(|a| num(results, &format!("/table4/{d}/{a}_accuracy")).map(|x| (*a, x)))
            .min_by(|a, b| a.1.total_cmp(&b.1));
        let clean = num(results, &format!("/table4/{d}/clean_accuracy"));
        if let (Some((attack, acc)), Some(clean)) = (adv, clean) {
            let _ = writeln!(
                out,
                "- **{d}, attack 1:** a man in the middle before encryption takes the encrypted \
                 service from {clean:.3} to {acc:.3} accuracy ({attack}, ε 0.3)."
            );
            if acc < clean / 2.0 {
                exposed.push("the input before encryption");
            }
        }
        let ssim = num(results, &format!("/table5/{d}/ssim"));
        let nearest = num(results, &format!("/table5/{d}/nearest_aux_ssim"));
        let reclass = num(results, &format!("/table5/{d}/reclassification_accuracy"));
        let beats = results
            .pointer(&format!("/table5/{d}/beats_every_baseline"))
            .and_then(Value::as_bool);
        if let (Some(s), Some(r)) = (ssim, reclass) {
            let _ = writeln!(
                out,
                "- **{d}, attack 2:** from released scores alone, reconstructions are re-classified \
                 correctly {r:.3} of the time at SSIM {s:.3} (data range 1; nearest auxiliary image \
                 {}); the generator {} every baseline.",
                nearest.map_or("—".into(), |n| format!("{n:.3}")),
                if beats == Some(true) { "beats" } else { "does not beat" }
            );
            if beats == Some(true) {
                exposed.push("the released outputs");
            }
        }
        let table = if d == Dataset::Mnist {
            "table6"
        } else {
            "table7"
        };
        if let Some(v) = results.pointer(&format!("/{table}/{d}")) {
            let auc = num(v, "/lira_auc");
            let tpr = num(v, "/lira_tpr_at_1pct_fpr");
            let softmax = v.get("softmax_changes_conclusion").and_then(Value::as_bool);
            let beyond = v
                .get("any_beats_chance_at_low_fpr")
                .and_then(Value::as_bool);
            let shokri: Vec<f64> = v
                .get("shokri")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|r| {
                    r.get("phase").and_then(Value::as_str) == Some("test")
                        && r.get("features").and_then(Value::as_str) == Some("raw")
                })
                .filter_map(|r| num(r, "/accuracy"))
                .collect();
            let range = shokri
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
                    (lo.min(x), hi.max(x))
                });
            let _ = writeln!(
                out,
                "- **{d}, attack 3:** Shokri et al.'s attack on raw scores reaches test-phase \
                 accuracy {} (chance 0.5); LiRA reaches AUC {} and TPR {} at 1 % FPR; some \
                 attack {} chance at low FPR; softmax normalisation {} a conclusion.",
                if shokri.is_empty() {
                    "—".to_string()
                } else {
                    format!("{:.3}–{:.3}", range.0, range.1)
                },
                auc.map_or("—".into(), |x| format!("{x:.3}")),
                tpr.map_or("—".into(), |x| format!("{x:.3}")),
                match beyond {
                    Some(true) => "beats",
                    Some(false) => "does not beat",
                    None => "—",
                },
                match softmax {
                    Some(true) => "changes",
                    Some(false) => "does not change",
                    None => "—",
                }
            );
            if beyond == Some(true) {
                exposed.push("the training set, to an insider");
            }
        }
    }
    let recovered = |section: &str| -> Vec<String> {
        results
            .get(section)
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|o| o.values())
            .filter(|v| v.get("recovered").and_then(Value::as_bool) == Some(true))
            .map(|v| format!("{} {}", plain(&v["scheme"]), plain(&v["adversary"])))
            .collect()
    };
    let undefended = recovered("key_recovery");
    let defended = recovered("countermeasures");
    let list = |v: &[String]| {
        if v.is_empty() {
            "nobody".to_string()
        } else {
            v.join(", ")
        }
    };
    let _ = writeln!(
        out,
        "- **Attack 4 (beyond the paper):** with exact releases the secret key falls to: {}. \
         Under the trusted party's default release policy it falls to: {}.\n",
        list(&undefended),
        list(&defended),
    );
    if !defended.is_empty() {
        exposed.push("the secret key itself, under the default release policy");
    }
    // Each data set adds its findings: name each one once.
    let mut seen = Vec::new();
    exposed.retain(|e| {
        let first = !seen.contains(e);
        seen.push(*e);
        first
    });
    if exposed.is_empty() {
        out.push_str(
            "In this run no attack beat its baseline: these figures do not show the \
             deployment insecure.\n",
        );
    } else {
        let _ = writeln!(
            out,
            "HE protects the data between the trusted party and the compute server and \
             nothing else. In this run the attacks reached {}. As the paper describes it, \
             HE-based deep learning is not secure enough; the countermeasures measured above \
             say which defence closes which gap.",
            exposed.join("; ")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_carry_the_paper_and_the_difference() {
        assert_eq!(cell(Some(0.984), Some(0.971)), "0.984 (0.971, +0.013)");
        assert_eq!(cell(Some(0.5), None), "0.500");
        assert_eq!(cell(None, Some(0.1)), "— (0.100)");
        assert_eq!(cell(None, None), "—");
    }

    #[test]
    fn the_report_renders_tables_from_stage_json() {
        let results = json!({
            "data_source": "embedded-subset",
            "table3": {"mnist": {"train": {"encrypted_accuracy": 0.99}, "test": {
                "encrypted_accuracy": 0.98, "plain_accuracy": 0.98, "agreement": 1.0}}},
            "table4": {"mnist": {"clean_accuracy": 0.98, "fgsm_accuracy": 0.2,
                "bim_accuracy": 0.02, "cw_accuracy": 0.03, "command": "heist attack adversarial"}},
            "table6": {"mnist": {"shokri": [
                {"shadows": 2, "phase": "test", "features": "raw", "fraction": 1.0,
                 "accuracy": 0.5, "recall": 0.4, "precision": 0.5,
                 "paper": {"accuracy": 0.494, "recall": 0.498, "precision": 0.494}}],
                "members": 10, "non_members": 10, "lira_auc": 0.55}},
            "key_recovery": {"ckks-active-exact": {"scheme": "ckks", "adversary": "active",
                "release": "exact", "recovered": true}},
        });
        let md = markdown(&results);
        assert!(md.contains("NOTICE"), "the subset is announced");
        assert!(
            md.contains("| mnist | 0.990 (0.990, +0.000) | 0.980 (0.971, +0.009)"),
            "{md}"
        );
        assert!(md.contains("0.200 (0.081, +0.119)"), "FGSM cell");
        assert!(md.contains("0.500 (0.494, +0.006)"), "Table 6 cell");
        assert!(md.contains("`heist attack adversarial`"), "commands listed");
        assert!(md.contains("the secret key falls to: ckks active"), "{md}");
        assert!(md.contains("from 0.980 to 0.020 accuracy (bim"), "{md}");
        assert!(
            md.contains("attacks reached the input before encryption"),
            "{md}"
        );
    }
}
