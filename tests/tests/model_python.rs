//! Model files interoperate with NumPy: tests/python/roundtrip.py re-implements the forward
//! pass from a heist file, and writes a model as PyTorch would that heist must load
//! unchanged. Skipped, with a notice, when python3 with numpy and safetensors is missing.

use std::path::PathBuf;
use std::process::Command;

use heist::data::{self, Dataset};
use heist::model::{scaled, Architecture, Model};
use heist::train::{self, optim::OptimizerKind, TrainConfig};

fn python_ready() -> bool {
    Command::new("python3")
        .args(["-c", "import numpy, safetensors.numpy"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn f32_file(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

#[test]
fn heist_and_numpy_agree_on_each_others_model_files() {
    if !python_ready() {
        eprintln!("SKIPPED: python3 with numpy and safetensors is not importable");
        return;
    }
    let work = std::env::temp_dir().join(format!("heist-python-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).expect("work dir");

    // A briefly trained MNIST model, so scores are those of a real network.
    let data = data::load(Dataset::Mnist, None, true).expect("embedded subset");
    let cfg = TrainConfig {
        arch: Architecture::Mnist,
        epochs: 1,
        batch_size: 64,
        lr: 1e-3,
        optimizer: OptimizerKind::Adam,
        momentum: 0.0,
        clip_norm: None,
        fraction: 0.25,
        seed: 1,
    };
    let model = train::train(&data.train, &cfg, |_, _, _| {})
        .expect("trains")
        .model;
    model.save(&work.join("heist.safetensors")).expect("save");
    let images = scaled(&data.test.truncated(64));
    std::fs::write(work.join("images.f32"), f32_file(&images)).expect("write");
    std::fs::write(
        work.join("heist_scores.f32"),
        f32_file(&model.scores(&images)),
    )
    .expect("write");

    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/roundtrip.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(&work)
        .output()
        .expect("run python3");
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "roundtrip.py failed");

    // The NumPy-written file (no metadata) loads unchanged and gives NumPy's scores.
    let theirs = Model::load(&work.join("numpy.safetensors"), None).expect("loads");
    assert_eq!(theirs.architecture(), Architecture::Fashion);
    let expected: Vec<f32> = std::fs::read(work.join("numpy_scores.f32"))
        .expect("read")
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let got = theirs.scores(&images);
    let scale = 1.0 + expected.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    for (g, e) in got.iter().zip(&expected) {
        assert!((g - e).abs() <= 1e-4 * scale, "score {g} vs numpy {e}");
    }
    let argmax = |z: &[f32]| heist::model::network::argmax(z).0;
    let ours: Vec<usize> = got.chunks_exact(10).map(argmax).collect();
    let numpy: Vec<usize> = expected.chunks_exact(10).map(argmax).collect();
    assert_eq!(ours, numpy, "predictions differ");
    std::fs::remove_dir_all(&work).expect("cleanup");
}
