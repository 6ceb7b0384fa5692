//! `heist train` and `heist eval` as the command line runs them: outputs, JSON keys, member
//! files, metadata and exit codes.

use std::path::PathBuf;

use clap::Parser;
use heist::cli::eval::{self, EvalArgs};
use heist::cli::exit::CliError;
use heist::cli::train::{self, TrainArgs};
use heist::model::Model;
use heist::train::Members;

#[derive(Parser)]
struct Train {
    #[command(flatten)]
    args: TrainArgs,
}

#[derive(Parser)]
struct Eval {
    #[command(flatten)]
    args: EvalArgs,
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("heist-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch");
    dir
}

fn train(argv: &[&str]) -> Result<(), CliError> {
    let t = Train::try_parse_from(std::iter::once("train").chain(argv.iter().copied()))
        .expect("parses");
    train::run(t.args)
}

fn eval(argv: &[&str]) -> Result<(), CliError> {
    let e =
        Eval::try_parse_from(std::iter::once("eval").chain(argv.iter().copied())).expect("parses");
    eval::run(e.args)
}

fn read_json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).expect("json written")).expect("valid json")
}

#[test]
fn train_then_eval_on_the_embedded_subset() {
    let dir = scratch("train-eval");
    let model = dir.join("m.safetensors");
    let json = dir.join("train.json");
    let (m, j) = (
        model.to_str().expect("utf-8"),
        json.to_str().expect("utf-8"),
    );
    train(&[
        "--dataset",
        "fashion",
        "--embedded",
        "--epochs",
        "2",
        "--fraction",
        "0.2",
        "--seed",
        "4",
        "--out",
        m,
        "--json",
        j,
        "--quiet",
    ])
    .expect("trains");
    let out = read_json(&json);
    assert_eq!(out["dataset"], "fashion");
    assert_eq!(out["data_source"], "embedded-subset");
    assert_eq!(out["seed"], 4);
    assert_eq!(out["train_images"], 400);
    for key in ["train_accuracy", "test_accuracy", "seconds"] {
        let v = out[key].as_f64().unwrap_or(-1.0);
        assert!(v > 0.0, "{key} = {}", out[key]);
    }
    let members: Members =
        serde_json::from_value(read_json(&dir.join("m.safetensors.members.json")))
            .expect("members file");
    assert_eq!(members.members.len(), 400);
    assert_eq!(members.train_size, 2000);
    assert_eq!(members.data_source, "embedded-subset");
    assert!(members.members.windows(2).all(|w| w[0] < w[1]));

    let loaded = Model::load(&model, None).expect("model loads");
    assert_eq!(
        loaded.info.get("members_file"),
        Some("m.safetensors.members.json")
    );
    assert_eq!(loaded.info.get("data_source"), Some("embedded-subset"));
    assert_eq!(loaded.info.get("seed"), Some("4"));
    assert_eq!(
        loaded.info.get("dataset_checksum"),
        Some(heist::data::Dataset::Fashion.checksum().as_str())
    );

    let ej = dir.join("eval.json");
    eval(&[
        "--model",
        m,
        "--dataset",
        "fashion",
        "--embedded",
        "--limit",
        "100",
        "--json",
        ej.to_str().expect("utf-8"),
    ])
    .expect("evaluates");
    let e = read_json(&ej);
    assert_eq!(e["images"], 100);
    assert_eq!(e["data_source"], "embedded-subset");
    let data = heist::data::load(heist::data::Dataset::Fashion, None, true).expect("subset");
    let expected = loaded.accuracy(&data.test.truncated(100));
    assert_eq!(e["plain_accuracy"].as_f64(), Some(expected));
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn bad_input_exits_2() {
    let dir = scratch("bad");
    let out = dir.join("x.safetensors");
    let o = out.to_str().expect("utf-8");
    for fraction in ["0", "1.5"] {
        let err = train(&["--embedded", "--fraction", fraction, "--out", o, "--quiet"])
            .expect_err("bad fraction");
        assert_eq!(err.exit_code(), 2, "{err}");
    }
    assert!(!out.exists(), "nothing written on bad input");
    let err = eval(&["--model", o, "--embedded"]).expect_err("missing model");
    assert_eq!(err.exit_code(), 2, "{err}");
    std::fs::write(&out, b"not a model").expect("write");
    let err = eval(&["--model", o, "--embedded"]).expect_err("garbage model");
    assert_eq!(err.exit_code(), 2, "{err}");
    assert!(err.to_string().contains("x.safetensors"), "{err}");
    // A data directory without the data set is bad input too, not a silent fallback.
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).expect("mkdir");
    let err = train(&[
        "--data-dir",
        empty.to_str().expect("utf-8"),
        "--out",
        o,
        "--quiet",
    ])
    .expect_err("no data");
    assert_eq!(err.exit_code(), 2, "{err}");
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn embedded_and_data_dir_conflict() {
    let r = Train::try_parse_from(["train", "--embedded", "--data-dir", "x", "--out", "m"]);
    assert!(r.is_err(), "--embedded with --data-dir must not parse");
}
