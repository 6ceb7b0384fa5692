//! `heist reproduce`: the paper's Tables 3–7 and Figures 4–6, and the sections beyond it,
//! as a plan of independent stages.
//!
//! A [`Stage`] is one `heist` command line (for example `attack adversarial --dataset
//! mnist …`): a pure function of its arguments, the seed among them, and the data it
//! reads. Each writes its own JSON (the same JSON the command writes when run by hand) and
//! its figures into the output directory. A stage whose JSON is present under the same
//! [`Stage::key`] is not run again, so an interrupted run resumes where it stopped, and a
//! stage can equally be handed to any job runner as a process of its own.
//!
//! [`report`] turns the stages' JSON into `results.json` and `report.md`.

pub mod paper;
pub mod report;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::data::Dataset;
use crate::service::{ReleasePolicy, Scheme};

/// What to reproduce and how.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Config {
    /// Small settings that finish in minutes (a smoke run, not a reproduction).
    pub quick: bool,
    /// The data root handed to every stage; `None` lets each stage discover the data
    /// (`$HEIST_DATA_DIR`, `./data`, …, then the embedded subset).
    pub data_dir: Option<PathBuf>,
    /// Use the embedded subset whatever is on disk.
    pub embedded: bool,
    /// The data sets, in order.
    pub datasets: Vec<Dataset>,
    /// Seed of every model, draw and key.
    pub seed: u64,
    /// The scheme of every target query (CKKS or BFV).
    pub scheme: Scheme,
    /// The model cache shared with the other commands.
    pub cache: PathBuf,
}

/// The part of `results.json` (and of the report) a stage feeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    /// Baseline accuracy of the targets, train and test, through encryption.
    Table3,
    /// Adversarial examples.
    Table4,
    /// Reconstruction.
    Table5,
    /// Membership inference, MNIST.
    Table6,
    /// Membership inference, Fashion-MNIST.
    Table7,
    /// Secret-key recovery from the released decryptions.
    KeyRecovery,
    /// The defences, measured.
    Countermeasures,
}

impl Section {
    /// Every section, in report order.
    pub const ALL: [Section; 7] = [
        Section::Table3,
        Section::Table4,
        Section::Table5,
        Section::Table6,
        Section::Table7,
        Section::KeyRecovery,
        Section::Countermeasures,
    ];

    /// The key of `results.json`.
    pub fn key(self) -> &'static str {
        match self {
            Section::Table3 => "table3",
            Section::Table4 => "table4",
            Section::Table5 => "table5",
            Section::Table6 => "table6",
            Section::Table7 => "table7",
            Section::KeyRecovery => "key_recovery",
            Section::Countermeasures => "countermeasures",
        }
    }
}

/// One unit of work: a `heist` command line and where its results go.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Stage {
    /// A name unique within the plan, usable as a file name (`table4-mnist`).
    pub id: String,
    /// The section its JSON feeds.
    pub section: Section,
    /// The entry of the section it fills (`mnist`, `test`, `ckks_active`, …).
    pub entry: String,
    /// The `heist` arguments, subcommand first, without `--json` and `--out`.
    pub args: Vec<String>,
    /// Whether the command takes `--out DIR` for figures.
    pub figures: bool,
    /// A rough duration on two cores, in seconds, for the progress estimate.
    pub estimate_seconds: f64,
    /// The stage that must finish before this one starts: the first stage of the data set
    /// whose cached model this one reads, which trains that model when the cache lacks it
    /// (so that stages run side by side never train one model twice).
    pub after: Option<String>,
}

impl Stage {
    /// A SHA-256 of everything that decides the stage's output: the crate version, the
    /// arguments and the data directory the environment names.
    pub fn key(&self) -> String {
        let mut h = Sha256::new();
        h.update(env!("CARGO_PKG_VERSION").as_bytes());
        for a in &self.args {
            h.update((a.len() as u64).to_le_bytes());
            h.update(a.as_bytes());
        }
        if let Some(dir) = std::env::var_os("HEIST_DATA_DIR") {
            h.update(dir.as_encoded_bytes());
        }
        crate::data::hex(&h.finalize())
    }

    /// The stage's JSON under the output directory `out`.
    pub fn json_path(&self, out: &Path) -> PathBuf {
        out.join("stages").join(format!("{}.json", self.id))
    }

    /// The file holding the key of the finished stage's JSON.
    pub fn key_path(&self, out: &Path) -> PathBuf {
        out.join("stages").join(format!("{}.key", self.id))
    }

    /// The stage's log (its standard output and error).
    pub fn log_path(&self, out: &Path) -> PathBuf {
        out.join("logs").join(format!("{}.log", self.id))
    }

    /// The stage's figure directory, relative to `out`.
    pub fn figures_dir(&self) -> PathBuf {
        Path::new("figures").join(&self.id)
    }

    /// The full argument list the stage runs with under `out`: its arguments, then
    /// `--json` (to `json`) and `--out`.
    pub fn command_line(&self, out: &Path, json: &Path) -> Vec<String> {
        let mut args = self.args.clone();
        args.push("--json".into());
        args.push(json.display().to_string());
        if self.figures {
            args.push("--out".into());
            args.push(out.join(self.figures_dir()).display().to_string());
        }
        args
    }

    /// Whether the stage finished under `out` with its current key.
    pub fn is_done(&self, out: &Path) -> bool {
        self.json_path(out).is_file()
            && std::fs::read_to_string(self.key_path(out)).is_ok_and(|k| k.trim() == self.key())
    }

    /// Records the stage as finished: moves `partial` (the JSON it wrote) to its place,
    /// then writes the key, each by an atomic rename, so an interrupted run never leaves a
    /// stage that looks finished and is not.
    ///
    /// # Errors
    /// When a file cannot be written or renamed.
    pub fn commit(&self, out: &Path, partial: &Path) -> std::io::Result<()> {
        std::fs::rename(partial, self.json_path(out))?;
        let key = self.key_path(out);
        let tmp = key.with_extension("key.partial");
        std::fs::write(&tmp, self.key() + "\n")?;
        std::fs::rename(&tmp, key)
    }
}

/// A command line: the subcommand `words`, then each group of arguments in order.
fn command(words: &[&str], groups: &[&[String]]) -> Vec<String> {
    words
        .iter()
        .map(|w| w.to_string())
        .chain(groups.iter().flat_map(|g| g.iter().cloned()))
        .collect()
}

/// `--flag value` pairs as arguments.
fn flags(pairs: &[(&str, String)]) -> Vec<String> {
    pairs
        .iter()
        .flat_map(|(flag, value)| [format!("--{flag}"), value.clone()])
        .collect()
}

/// The shared arguments of every stage reading `dataset`.
fn data_args(config: &Config, dataset: Dataset) -> Vec<String> {
    let mut args = vec!["--dataset".to_string(), dataset.to_string()];
    if config.embedded {
        args.push("--embedded".into());
    } else if let Some(dir) = &config.data_dir {
        args.push("--data-dir".into());
        args.push(dir.display().to_string());
    }
    args
}

fn scheme_name(scheme: Scheme) -> String {
    match scheme {
        Scheme::Bfv => "bfv",
        _ => "ckks",
    }
    .to_string()
}

/// The stages of a run, in order: per data set Table 3 (train and test accuracy through
/// encryption, and the other scheme's agreement), Table 4, Table 5 and Table 6 or 7; then
/// key recovery by both adversaries on both schemes, undefended and under the trusted
/// party's default release policy.
pub fn plan(config: &Config) -> Vec<Stage> {
    let quick = config.quick;
    let seed = config.seed.to_string();
    let oracle = scheme_name(config.scheme);
    let cache = config.cache.display().to_string();
    let mut stages = Vec::new();
    for &dataset in &config.datasets {
        let data = data_args(config, dataset);
        let model = flags(&[("cache", cache.clone()), ("seed", seed.clone())]);
        let with = |words: &[&str], extra: Vec<String>| command(words, &[&data, &model, &extra]);
        // An empty `entry` puts the stage's JSON at `section.dataset`.
        let stage = |section, entry: &str, args, figures, estimate: (f64, f64)| Stage {
            id: [section_id(section), dataset.name(), entry]
                .iter()
                .filter(|part| !part.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join("-"),
            section,
            entry: if entry.is_empty() {
                dataset.to_string()
            } else {
                format!("{dataset}/{entry}")
            },
            args,
            figures,
            estimate_seconds: if quick { estimate.0 } else { estimate.1 },
            after: None,
        };
        let first = stages.len();
        let (train_limit, test_limit) = if quick {
            ("500", "1000")
        } else {
            ("10000", "10000")
        };
        for (split, limit) in [("train", train_limit), ("test", test_limit)] {
            stages.push(stage(
                Section::Table3,
                split,
                with(
                    &["demo"],
                    flags(&[
                        ("scheme", oracle.clone()),
                        ("split", split.into()),
                        ("limit", limit.into()),
                    ]),
                ),
                false,
                (8.0, 40.0),
            ));
        }
        let other = if config.scheme == Scheme::Bfv {
            "ckks"
        } else {
            "bfv"
        };
        // MNIST's network squares twice, so its BFV ring has 16,384 slots and one batch
        // costs about 50 s on two cores whatever the number of images: a quick run checks
        // BFV's exactness on Fashion-MNIST's network only.
        let cross_check = !(quick && other == "bfv" && dataset == Dataset::Mnist);
        if cross_check {
            stages.push(stage(
                Section::Table3,
                &format!("test-{other}"),
                with(
                    &["demo"],
                    flags(&[
                        ("scheme", other.into()),
                        ("split", "test".into()),
                        ("limit", if quick { "256" } else { "2048" }.into()),
                    ]),
                ),
                false,
                (10.0, 40.0),
            ));
        }
        // The accuracy-against-ε curve runs every attack again at each ε (the Square Attack
        // at every ε in lockstep, its queries filling shared CKKS batches): on fewer images
        // than the table, and not in a quick run.
        let adversarial = if quick {
            let mut args = flags(&[
                ("limit", "100".into()),
                ("cw-limit", "20".into()),
                ("square-limit", "20".into()),
                // Each round of the Square Attack is one encrypted batch.
                ("square-iters", "2".into()),
                ("transfer-aux", "500".into()),
                ("transfer-epochs", "3".into()),
            ]);
            args.push("--no-eps-curve".into());
            args
        } else {
            flags(&[("curve-limit", "200".into())])
        };
        stages.push(stage(
            Section::Table4,
            "",
            with(
                &["attack", "adversarial"],
                [flags(&[("oracle", oracle.clone())]), adversarial].concat(),
            ),
            true,
            (25.0, 320.0),
        ));
        let reconstruction = if quick {
            flags(&[
                ("aux", "500".into()),
                ("targets", "100".into()),
                ("generator-epochs", "5".into()),
            ])
        } else {
            vec!["--curves".into()]
        };
        stages.push(stage(
            Section::Table5,
            "",
            with(
                &["attack", "reconstruction"],
                [flags(&[("oracle", oracle.clone())]), reconstruction].concat(),
            ),
            true,
            (20.0, 240.0),
        ));
        let membership = if quick {
            flags(&[
                ("shadows", "2,4".into()),
                ("fractions", "1,0.2".into()),
                ("lira-models", "8".into()),
                ("members", "200".into()),
                ("epochs", "2".into()),
            ])
        } else {
            Vec::new()
        };
        let membership_args = command(
            &["attack", "membership"],
            &[
                &data,
                &flags(&[("seed", seed.clone()), ("oracle", oracle.clone())]),
                &membership,
            ],
        );
        stages.push(stage(
            match dataset {
                Dataset::Mnist => Section::Table6,
                Dataset::Fashion => Section::Table7,
            },
            "",
            membership_args,
            true,
            (30.0, 600.0),
        ));
        let first_id = stages[first].id.clone();
        for later in &mut stages[first + 1..] {
            later.after = Some(first_id.clone());
        }
    }
    // The key-recovery stages read the first data set's model, which its first stage made.
    let model_stage = stages.first().map(|s| s.id.clone());
    if let Some(&dataset) = config.datasets.first() {
        let data = data_args(config, dataset);
        // The accuracy and agreement under each policy come from classifying `limit` test
        // images through a service of their own. A quick run skips that for BFV, whose one
        // batch costs most of the stage (Table 3 checks BFV's exactness already), and for
        // exact releases, which Table 3's encrypted accuracy already measures: it keeps the
        // one figure only this section has, the accuracy under the default CKKS release.
        let limit = |scheme: Scheme, release: ReleasePolicy| match (quick, scheme, release) {
            (false, _, _) => "1000",
            (true, Scheme::Bfv, _) | (true, _, ReleasePolicy::Exact) => "0",
            (true, _, _) => "256",
        };
        let exact = Some(ReleasePolicy::Exact);
        let runs: [(Scheme, &str, &str, Option<ReleasePolicy>, Section); 5] = [
            (Scheme::Ckks, "active", "exact", exact, Section::KeyRecovery),
            (Scheme::Bfv, "active", "exact", exact, Section::KeyRecovery),
            (
                Scheme::Ckks,
                "passive",
                "exact",
                exact,
                Section::KeyRecovery,
            ),
            (
                Scheme::Ckks,
                "active",
                "default",
                None,
                Section::Countermeasures,
            ),
            (
                Scheme::Bfv,
                "active",
                "default",
                None,
                Section::Countermeasures,
            ),
        ];
        for (scheme, adversary, release_name, release, section) in runs {
            // The countermeasure: what `serve trusted` releases by default.
            let release = release.unwrap_or(ReleasePolicy::default_for(scheme));
            let mut args = command(&["attack", "key-recovery"], &[&data]);
            args.extend(flags(&[
                ("cache", cache.clone()),
                ("seed", seed.clone()),
                ("scheme", scheme.to_string()),
                ("adversary", adversary.into()),
                ("limit", limit(scheme, release).into()),
                ("release", release.to_string()),
            ]));
            // The undefended BFV trusted party also skips its checks of every reply.
            if (scheme, adversary, section) == (Scheme::Bfv, "active", Section::KeyRecovery) {
                args.push("--unchecked".into());
            }
            let entry = format!("{scheme}-{adversary}-{release_name}");
            stages.push(Stage {
                id: format!("{}-{entry}", section_id(section)),
                section,
                entry,
                args,
                figures: false,
                estimate_seconds: if quick { 15.0 } else { 30.0 },
                after: model_stage.clone(),
            });
        }
    }
    stages
}

/// The short name of a section in stage ids.
fn section_id(section: Section) -> &'static str {
    match section {
        Section::KeyRecovery => "keys",
        Section::Countermeasures => "defences",
        other => other.key(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(quick: bool) -> Config {
        Config {
            quick,
            data_dir: None,
            embedded: true,
            datasets: vec![Dataset::Mnist, Dataset::Fashion],
            seed: 0,
            scheme: Scheme::Ckks,
            cache: PathBuf::from(".heist-cache"),
        }
    }

    #[test]
    fn every_section_has_a_stage_and_ids_are_unique() {
        for quick in [true, false] {
            let stages = plan(&config(quick));
            for section in Section::ALL {
                assert!(
                    stages.iter().any(|s| s.section == section),
                    "{section:?} has no stage (quick {quick})"
                );
            }
            let mut ids: Vec<&str> = stages.iter().map(|s| s.id.as_str()).collect();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), stages.len(), "stage ids repeat");
            assert!(stages
                .iter()
                .all(|s| s.args.contains(&"--embedded".to_string())));
            // Each stage that reads a cached model waits for the stage before it that first
            // read that data set's model (and trains it on an empty cache).
            for (k, stage) in stages.iter().enumerate() {
                let dataset = |s: &Stage| {
                    let at = s
                        .args
                        .iter()
                        .position(|a| a == "--dataset")
                        .expect("--dataset");
                    s.args[at + 1].clone()
                };
                let first = stages
                    .iter()
                    .position(|s| dataset(s) == dataset(stage))
                    .expect("itself");
                if k == first {
                    assert_eq!(stage.after, None, "{}", stage.id);
                } else if stage.args.iter().any(|a| a == "--cache") {
                    assert_eq!(
                        stage.after.as_ref(),
                        Some(&stages[first].id),
                        "{}",
                        stage.id
                    );
                }
            }
        }
    }

    #[test]
    fn the_key_follows_the_arguments() {
        let stages = plan(&config(true));
        let a = &stages[0];
        let mut b = a.clone();
        assert_eq!(a.key(), b.key());
        b.args.push("--limit".into());
        assert_ne!(a.key(), b.key());
        // The split of the arguments counts, not only their concatenation.
        let mut c = a.clone();
        let mut d = a.clone();
        c.args = vec!["ab".into(), "c".into()];
        d.args = vec!["a".into(), "bc".into()];
        assert_ne!(c.key(), d.key());
    }

    #[test]
    fn a_stage_counts_as_done_only_with_its_json_and_key() {
        let out = std::env::temp_dir().join(format!("heist-reproduce-{}", std::process::id()));
        std::fs::create_dir_all(out.join("stages")).expect("temp dir");
        let stage = &plan(&config(true))[0];
        assert!(!stage.is_done(&out));
        let partial = out.join("stages").join("partial.json");
        std::fs::write(&partial, "{}").expect("write");
        stage.commit(&out, &partial).expect("commit");
        assert!(stage.is_done(&out));
        std::fs::write(stage.key_path(&out), "another key\n").expect("write");
        assert!(!stage.is_done(&out), "a stale key is not done");
        std::fs::remove_dir_all(&out).ok();
    }
}
