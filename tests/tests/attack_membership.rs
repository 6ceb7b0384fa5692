//! Membership inference (attack 3): LiRA and the loss attack find the members of a
//! deliberately overfit model and not those of a model trained on its whole population;
//! the experiment runs end to end on the embedded data through an oracle, with a split
//! that covers what it claims.

use clap::Parser;
use heist::attack::membership::experiment::{self, ExperimentConfig};
use heist::attack::membership::lira;
use heist::attack::membership::metrics::roc;
use heist::attack::membership::shokri::AttackModelConfig;
use heist::attack::membership::signals::Signals;
use heist::attack::membership::Features;
use heist::cli::attack::membership::{self as cli, MembershipArgs};
use heist::cli::exit::CliError;
use heist::data::{subset, Dataset, Images};
use heist::model::Architecture;
use heist::oracle::PlainOracle;
use heist::train::{self, TrainConfig};
use heist_tests::seeded_rng;
use rand_core::RngCore;

fn config(epochs: usize, seed: u64) -> TrainConfig {
    TrainConfig {
        batch_size: 16,
        ..TrainConfig::adam(Architecture::Fashion, epochs, seed)
    }
}

fn concat(a: &Images, b: &Images) -> Images {
    let mut out = a.clone();
    out.pixels.extend_from_slice(&b.pixels);
    out.labels.extend_from_slice(&b.labels);
    out
}

/// AUC and TPR at 1 % FPR of LiRA online (raw hinge) and of the loss attack against a
/// target trained on `target_train`, for 100 members (the first 100 challenge records) and
/// 100 non-members: `[(lira auc, lira tpr), (loss auc, loss tpr)]`.
fn attacks(challenge: &Images, insider: &Images, target_train: &Images) -> [(f64, f64); 2] {
    let cfg = config(30, 5);
    let target = train::train(target_train, &cfg, |_, _, _| {}).expect("target trains");
    let member: Vec<bool> = (0..challenge.len()).map(|i| i < 100).collect();
    let mut oracle = PlainOracle::new(target.model);
    let signals = Signals::collect(&mut oracle, challenge, member.clone()).expect("signals");
    let shadows = lira::train_shadows(challenge, insider, 8, &cfg, 9).expect("shadows train");
    let scores = lira::scores(&shadows, &signals, Features::Raw).expect("scores");
    let lira = roc(&scores.online, &member);
    let loss = roc(&lira::loss_scores(&signals), &member);
    [
        (lira.auc(), lira.tpr_at_fpr(0.01)),
        (loss.auc(), loss.tpr_at_fpr(0.01)),
    ]
}

/// Overfit: the target trains 30 epochs on exactly the 100 member records, whose labels
/// (like every record's here) are drawn at random, so it can only memorise them. Control:
/// the target trains on all 200 challenge records, so the "members" are no more members
/// than the "non-members". 1 % FPR with 100 non-members means no false positive at all.
/// Margins: on the overfit model TPR at 1 % FPR >= 0.10 (10x the nominal rate) and AUC >=
/// 0.9; on the control TPR <= 0.05 and AUC within 0.5 +- 0.1.
#[test]
fn lira_and_loss_find_the_members_of_an_overfit_model_only() {
    let data = subset::load(Dataset::Fashion).expect("embedded data");
    let mut rng = seeded_rng("membership-overfit", 4);
    let mut relabel = |images: Images| Images {
        labels: (0..images.len())
            .map(|_| (rng.next_u32() % 10) as u8)
            .collect(),
        ..images
    };
    let members = relabel(data.train.truncated(100));
    let rest = relabel(data.test.truncated(200));
    let non_members = rest.select(&(0..100).collect::<Vec<_>>());
    let insider = rest.select(&(100..200).collect::<Vec<_>>());
    let challenge = concat(&members, &non_members);

    for (name, (auc, tpr)) in ["LiRA", "loss"]
        .into_iter()
        .zip(attacks(&challenge, &insider, &members))
    {
        assert!(
            tpr >= 0.10,
            "{name} TPR at 1 % FPR on the overfit model: {tpr}"
        );
        assert!(auc >= 0.9, "{name} AUC on the overfit model: {auc}");
    }
    for (name, (auc, tpr)) in ["LiRA", "loss"]
        .into_iter()
        .zip(attacks(&challenge, &insider, &challenge))
    {
        assert!(tpr <= 0.05, "{name} TPR at 1 % FPR on the control: {tpr}");
        assert!((auc - 0.5).abs() <= 0.1, "{name} AUC on the control: {auc}");
    }
}

/// The whole experiment on a slice of the embedded data through the plaintext oracle:
/// every table row is there, the split is balanced and covers the test records exactly
/// once, and the figures are what their definitions say.
#[test]
fn experiment_runs_end_to_end_with_a_checked_split() {
    let data = subset::load(Dataset::Mnist).expect("embedded data");
    let train = data.train.truncated(400);
    let test = data.test.truncated(200);
    let cfg = ExperimentConfig {
        training: config(2, 0),
        fractions: vec![1.0, 0.5],
        shadows: vec![2, 4],
        lira_models: 4,
        per_side: 60,
        attack: AttackModelConfig {
            hidden: 16,
            schedule: train::FitOptions {
                epochs: 5,
                ..AttackModelConfig::default().schedule
            },
        },
        seed: 1,
    };
    let mut queries = 0;
    let targets = experiment::train_targets(&train, &cfg).expect("targets train");
    let outcome = experiment::run(
        Dataset::Mnist,
        &train,
        &test,
        targets,
        &cfg,
        |model, records, member| {
            let mut oracle = PlainOracle::new(model.clone());
            let s = Signals::collect(&mut oracle, records, member)?;
            queries += heist::oracle::Oracle::queries(&oracle);
            Ok(s)
        },
    )
    .expect("experiment runs");
    assert_eq!(queries, 2 * 120, "each target answers each record once");
    assert_eq!((outcome.members, outcome.non_members), (60, 60));
    assert_eq!(outcome.insider_records, 140);
    let split = &outcome.split;
    // The half target's members are the only ones every target holds.
    let half = train::train(
        &train,
        &TrainConfig {
            fraction: 0.5,
            ..config(0, 1)
        },
        |_, _, _| {},
    );
    let half = half
        .expect("an epoch-less run still draws its members")
        .members;
    assert!(split.members.iter().all(|m| half.binary_search(m).is_ok()));
    split.check(&[&half]).expect("split is consistent");
    // 2 shadow counts x 2 targets x 2 phases x 2 features.
    assert_eq!(outcome.shokri.len(), 16);
    for row in &outcome.shokri {
        let expected = if row.phase == "test" {
            120
        } else {
            140 / row.shadows * row.shadows
        };
        assert_eq!(row.records, expected, "{row:?}");
        assert!(row.accuracy_ci.contains(row.accuracy), "{row:?}");
    }
    // 2 targets x (4 LiRA variants x 2 features + loss).
    assert_eq!(outcome.roc.len(), 18);
    for row in &outcome.roc {
        assert!((0.0..=1.0).contains(&row.auc), "{row:?}");
        assert!(row.tpr_at_0_1pct_fpr <= row.tpr_at_1pct_fpr, "{row:?}");
    }
    assert_eq!(
        outcome.lira_shadow_train_records.map(|(lo, hi)| lo <= hi),
        Some(true)
    );
}

#[derive(Parser)]
struct Membership {
    #[command(flatten)]
    args: MembershipArgs,
}

fn membership(argv: &[&str]) -> Result<(), CliError> {
    let m = Membership::try_parse_from(std::iter::once("membership").chain(argv.iter().copied()))
        .expect("parses");
    cli::run(m.args)
}

/// The command: the JSON keys the issue lists, and bad input refused with exit code 2.
#[test]
fn command_writes_the_listed_keys_and_refuses_bad_input() {
    let dir = std::env::temp_dir().join(format!("heist-membership-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch");
    let json = dir.join("membership.json");
    let json_arg = json.to_string_lossy().into_owned();
    let out_arg = dir.to_string_lossy().into_owned();
    let cache_arg = dir.join("cache").to_string_lossy().into_owned();
    membership(&[
        "--dataset",
        "mnist",
        "--embedded",
        "--oracle",
        "plain",
        "--fractions",
        "1",
        "--shadows",
        "2",
        "--lira-models",
        "2",
        "--epochs",
        "1",
        "--members",
        "50",
        "--sweep-epochs",
        "1,2",
        "--sweep-fractions",
        "0.5",
        "--sweep-lira-models",
        "2",
        "--cache",
        &cache_arg,
        "--json",
        &json_arg,
        "--out",
        &out_arg,
    ])
    .expect("runs");
    let text = std::fs::read_to_string(&json).expect("JSON written");
    let v: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    for key in [
        "dataset",
        "oracle",
        "encrypted",
        "shokri",
        "lira_auc",
        "lira_tpr_at_0_1pct_fpr",
        "lira_tpr_at_1pct_fpr",
        "loss_auc",
        "softmax_changes_conclusion",
        "members",
        "non_members",
        "seconds",
    ] {
        assert!(v.get(key).is_some(), "missing key {key}");
    }
    assert_eq!(v["members"], 50);
    assert_eq!(v["encrypted"], false);
    let row = &v["shokri"][0];
    for key in [
        "shadows",
        "fraction",
        "phase",
        "features",
        "accuracy",
        "accuracy_ci",
        "recall",
        "precision",
    ] {
        assert!(row.get(key).is_some(), "shokri row lacks {key}");
    }
    for figure in ["roc", "sweep", "shokri-raw-1", "shokri-softmax-1"] {
        let png = std::fs::read(dir.join(format!("membership-mnist-{figure}.png")))
            .unwrap_or_else(|e| panic!("figure {figure}: {e}"));
        assert_eq!(png.get(..8), Some(&b"\x89PNG\r\n\x1a\n"[..]), "{figure}");
    }
    let full = std::fs::read_to_string(dir.join("membership-mnist.json")).expect("full report");
    let full: serde_json::Value = serde_json::from_str(&full).expect("valid JSON");
    assert_eq!(full["split"]["members"].as_array().map(Vec::len), Some(50));
    // The sweep: the main target, then one target per (epochs, fraction), each with a gap,
    // a baseline and both kinds of features.
    let sweep = v["sweep"].as_array().expect("sweep list");
    assert_eq!(sweep.len(), 1 + 2, "{sweep:?}");
    assert_eq!(sweep[0]["source"], "main");
    for (point, (epochs, fraction)) in sweep[1..].iter().zip([(1, 0.5), (2, 0.5)]) {
        assert_eq!(point["source"], "sweep");
        assert_eq!(point["epochs"], epochs);
        assert_eq!(point["fraction"], fraction);
        let gap = point["gap"].as_f64().expect("gap");
        let baseline = point["gap_attack_accuracy"].as_f64().expect("baseline");
        // Balanced records: the gap attack scores 1/2 + gap/2 exactly.
        assert!((baseline - (0.5 + gap / 2.0)).abs() < 1e-9, "{point}");
        assert_eq!(point["attacks"].as_array().map(Vec::len), Some(2));
        assert!(
            point["attacks"][1]["lira_auc"].as_f64().is_some(),
            "{point}"
        );
    }
    assert_eq!(v["targets_from_cache"], 0);
    let first_accuracy = v["shokri"][1]["accuracy"].clone();

    // A second run reuses the cached target: same members, same figures.
    membership(&[
        "--dataset",
        "mnist",
        "--embedded",
        "--oracle",
        "plain",
        "--fractions",
        "1",
        "--shadows",
        "2",
        "--lira-models",
        "2",
        "--epochs",
        "1",
        "--members",
        "50",
        "--cache",
        &cache_arg,
        "--json",
        &json_arg,
    ])
    .expect("runs again");
    let again: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("JSON written"))
            .expect("valid JSON");
    assert_eq!(again["targets_from_cache"], 1);
    assert_eq!(again["shokri"][1]["accuracy"], first_accuracy);
    let _ = std::fs::remove_dir_all(&dir);

    let bad = |argv: &[&str]| matches!(membership(argv), Err(CliError::BadInput(_)));
    assert!(
        bad(&["--embedded", "--oracle", "tcp://127.0.0.1:9"]),
        "tcp without --model"
    );
    assert!(
        bad(&[
            "--embedded",
            "--oracle",
            "tcp://127.0.0.1:9",
            "--model",
            "m.safetensors",
            "--sweep"
        ]),
        "a sweep through a TCP service"
    );
    assert!(
        bad(&["--embedded", "--oracle", "plain", "--sweep-fractions", "0"]),
        "sweep fraction 0"
    );
    assert!(
        bad(&[
            "--embedded",
            "--oracle",
            "plain",
            "--fractions",
            "1",
            "--members",
            "5000",
            "--lira-models",
            "0",
            "--shadows",
            "2",
            "--epochs",
            "1"
        ]),
        "more members than the data"
    );
    assert!(
        bad(&["--embedded", "--oracle", "plain", "--lira-models", "3"]),
        "odd LiRA count"
    );
    assert!(
        bad(&["--embedded", "--oracle", "plain", "--fractions", "1.5"]),
        "fraction above 1"
    );
}

#[derive(Parser)]
struct Train {
    #[command(flatten)]
    args: heist::cli::train::TrainArgs,
}

#[derive(Parser)]
struct Serve {
    #[command(flatten)]
    args: heist::cli::service::ServeArgs,
}

/// A loopback address with a port free at the time of asking.
fn free_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("loopback port");
    listener.local_addr().expect("bound address").to_string()
}

/// Runs `heist serve ARGV` on a thread (it serves until the process ends) and waits until
/// `address` accepts connections.
fn serve(argv: Vec<String>, address: &str) {
    let s = Serve::try_parse_from(std::iter::once("serve".to_owned()).chain(argv)).expect("parses");
    std::thread::spawn(move || heist::cli::service::serve(s.args));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while std::net::TcpStream::connect(address).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "{address} never listened"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// `--oracle tcp://ADDR` end to end: `heist serve compute` and `heist serve trusted` (CKKS)
/// on loopback serve a model written by `heist train --fraction 0.5`; the attack through
/// them gives the plaintext model's figures within CKKS noise, and refuses a `--model` the
/// service does not run (whose members it would otherwise score).
#[test]
fn the_attack_runs_through_a_tcp_service_of_the_model_it_names() {
    let dir = std::env::temp_dir().join(format!("heist-membership-tcp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch");
    let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
    for (name, seed) in [("target.safetensors", "3"), ("other.safetensors", "4")] {
        let t = Train::try_parse_from([
            "train",
            "--dataset",
            "mnist",
            "--embedded",
            "--fraction",
            "0.5",
            "--epochs",
            "2",
            "--seed",
            seed,
            "--quiet",
            "--out",
            &path(name),
        ])
        .expect("parses");
        heist::cli::train::run(t.args).expect("trains");
    }
    let (compute, trusted) = (free_address(), free_address());
    let owned = |argv: &[&str]| argv.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
    let target = path("target.safetensors");
    serve(
        owned(&[
            "compute",
            "--listen",
            &compute,
            "--model",
            &target,
            "--scheme",
            "ckks",
            "--dataset",
            "mnist",
            "--embedded",
        ]),
        &compute,
    );
    serve(
        owned(&[
            "trusted",
            "--listen",
            &trusted,
            "--compute",
            &compute,
            "--model",
            &target,
            "--scheme",
            "ckks",
            "--dataset",
            "mnist",
            "--embedded",
            // The answers are compared with the model's to 0.01 below; the deployed
            // default release adds noise of deviation 0.1 against key recovery.
            "--release",
            "exact",
        ]),
        &trusted,
    );
    let tcp = format!("tcp://{trusted}");
    let attack = |model: &str, oracle: &str, json: &str| {
        membership(&[
            "--dataset",
            "mnist",
            "--embedded",
            "--model",
            model,
            "--oracle",
            oracle,
            "--shadows",
            "2",
            "--lira-models",
            "4",
            "--epochs",
            "2",
            "--members",
            "150",
            "--json",
            json,
        ])
    };
    let report = |json: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(json).expect("JSON written"))
            .expect("valid JSON")
    };
    attack(&target, &tcp, &path("tcp.json")).expect("attack through TCP");
    attack(&target, "plain", &path("plain.json")).expect("attack on the plaintext model");
    let (remote, local) = (report(&path("tcp.json")), report(&path("plain.json")));
    assert_eq!(remote["oracle"], tcp.as_str());
    assert_eq!(remote["encrypted"], true);
    assert_eq!(remote["queries"], 300, "each record asked once");
    let d = remote["oracle_deviation"][0].as_f64().expect("deviation");
    assert!(d < 0.01, "CKKS answers off the model by {d}");
    assert_eq!(local["oracle_deviation"][0], 0.0);
    let close = |key: &str, a: &serde_json::Value, b: &serde_json::Value, tol: f64| {
        let (a, b) = (a.as_f64().expect(key), b.as_f64().expect(key));
        assert!((a - b).abs() <= tol, "{key}: TCP {a}, plaintext {b}");
    };
    close(
        "gap",
        &remote["targets"][0]["gap"],
        &local["targets"][0]["gap"],
        0.01,
    );
    close("lira_auc", &remote["lira_auc"], &local["lira_auc"], 0.02);
    close("loss_auc", &remote["loss_auc"], &local["loss_auc"], 0.02);
    let rows = remote["shokri"].as_array().expect("rows");
    assert_eq!(rows.len(), 4, "2 phases x 2 features");
    for (a, b) in rows.iter().zip(local["shokri"].as_array().expect("rows")) {
        assert_eq!((&a["phase"], &a["features"]), (&b["phase"], &b["features"]));
        // 300 records: 0.02 is 6 records, far more than CKKS noise of 1e-3 flips.
        close("shokri accuracy", &a["accuracy"], &b["accuracy"], 0.02);
    }

    let wrong = attack(&path("other.safetensors"), &tcp, &path("wrong.json"));
    match wrong {
        Err(CliError::Failure(e)) => {
            assert!(format!("{e:#}").contains("does not run the model"), "{e:#}")
        }
        other => panic!("a model the service does not run was attacked: {other:?}"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}
