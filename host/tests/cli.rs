//! The `heist` binary as a user runs it: its exit codes (0 success, 1 failure, 2 bad
//! input), `heist demo`'s recovery from a corrupted model cache, and progress in a log.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("heist-bin-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch");
    dir
}

/// Runs the binary in `dir` and returns what it did.
fn heist(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_heist"))
        .args(args)
        .current_dir(dir)
        .env_remove("HEIST_DATA_DIR")
        .output()
        .expect("the binary runs")
}

/// Checks the exit code and returns stdout and stderr.
fn expect_code(output: &Output, code: i32, what: &str) -> (String, String) {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        output.status.code(),
        Some(code),
        "{what}: stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    (stdout, stderr)
}

#[test]
fn exit_codes_follow_the_documented_classes() {
    let dir = scratch("exit");

    // 0: training and evaluating a small model.
    let train = heist(
        &dir,
        &[
            "train",
            "--embedded",
            "--epochs",
            "1",
            "--fraction",
            "0.05",
            "--seed",
            "3",
            "--out",
            "m.safetensors",
            "--quiet",
        ],
    );
    expect_code(&train, 0, "train");
    let eval = heist(
        &dir,
        &[
            "eval",
            "--model",
            "m.safetensors",
            "--embedded",
            "--limit",
            "20",
        ],
    );
    let (stdout, _) = expect_code(&eval, 0, "eval");
    assert!(stdout.contains("20 test images"), "{stdout}");

    // 2: a missing model file, a corrupted one, arguments clap refuses.
    let missing = heist(
        &dir,
        &["eval", "--model", "missing.safetensors", "--embedded"],
    );
    let (_, stderr) = expect_code(&missing, 2, "missing model");
    assert!(stderr.starts_with("error: "), "{stderr}");
    std::fs::write(dir.join("bad.safetensors"), b"not a safetensors file").expect("written");
    let corrupted = heist(&dir, &["eval", "--model", "bad.safetensors", "--embedded"]);
    expect_code(&corrupted, 2, "corrupted model");
    let unknown = heist(&dir, &["eval", "--no-such-flag"]);
    expect_code(&unknown, 2, "unknown flag");
    let no_model = heist(
        &dir,
        &[
            "serve",
            "trusted",
            "--listen",
            "127.0.0.1:0",
            "--compute",
            "127.0.0.1:1",
            "--scheme",
            "bfv",
        ],
    );
    let (_, stderr) = expect_code(&no_model, 2, "BFV trusted party without a model");
    assert!(stderr.contains("--scheme bfv needs --model"), "{stderr}");

    // 1: valid input, but the compute server cannot be reached (nothing listens on a port
    // just released).
    let free = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("an ephemeral port");
    let trusted = heist(
        &dir,
        &[
            "serve",
            "trusted",
            "--listen",
            "127.0.0.1:0",
            "--compute",
            &free.to_string(),
            "--scheme",
            "plain",
        ],
    );
    let (_, stderr) = expect_code(&trusted, 1, "unreachable compute server");
    assert!(stderr.contains(&free.to_string()), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The cached model files of `dir`.
fn cache_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("cache directory")
        .map(|entry| entry.expect("entry").path())
        .collect();
    files.sort();
    files
}

#[test]
fn demo_retrains_over_a_corrupted_cache() {
    let dir = scratch("demo");
    let args = [
        "demo",
        "--embedded",
        "--scheme",
        "plain",
        "--epochs",
        "1",
        "--limit",
        "20",
        "--cache",
        "cache",
    ];
    let (stdout, _) = expect_code(&heist(&dir, &args), 0, "first demo");
    assert!(stdout.contains("trained now"), "{stdout}");
    let files = cache_files(&dir.join("cache"));
    assert_eq!(files.len(), 1, "{files:?}");
    let trained = std::fs::read(&files[0]).expect("cached model");

    // Corrupted (cut in half): reported, retrained, replaced.
    std::fs::write(&files[0], &trained[..trained.len() / 2]).expect("written");
    let (stdout, stderr) = expect_code(&heist(&dir, &args), 0, "demo over a corrupted cache");
    assert!(
        stderr.contains("warning: the cached model") && stderr.contains("does not load"),
        "{stderr}"
    );
    assert!(stdout.contains("trained now"), "{stdout}");
    assert_eq!(cache_files(&dir.join("cache")), files);
    let retrained = std::fs::read(&files[0]).expect("cached model");
    assert_eq!(retrained.len(), trained.len(), "a whole model file again");

    // The replacement is reused.
    let (stdout, stderr) = expect_code(&heist(&dir, &args), 0, "demo over the new cache");
    assert!(stdout.contains("(cached)"), "{stdout}");
    assert!(!stderr.contains("warning"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn progress_reaches_a_log_when_stderr_is_not_a_terminal() {
    let dir = scratch("progress");
    let train = heist(
        &dir,
        &[
            "train",
            "--embedded",
            "--epochs",
            "2",
            "--fraction",
            "0.05",
            "--out",
            "m.safetensors",
        ],
    );
    let (_, stderr) = expect_code(&train, 0, "train");
    for epoch in ["epoch 1/2: loss", "epoch 2/2: loss"] {
        assert!(stderr.contains(epoch), "{stderr}");
    }
    let attack = heist(
        &dir,
        &[
            "attack",
            "adversarial",
            "--embedded",
            "--model",
            "m.safetensors",
            "--oracle",
            "plain",
            "--attacks",
            "fgsm",
            "--limit",
            "8",
            "--no-eps-curve",
        ],
    );
    let (_, stderr) = expect_code(&attack, 0, "attack");
    assert!(
        stderr.contains("adversarial: fgsm on 8 images")
            && stderr.contains("s] adversarial: classify"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
