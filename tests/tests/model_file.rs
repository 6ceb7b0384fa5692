//! Model files: round trips, architecture inference, and rejection of anything that does
//! not match the architecture.

use std::collections::HashMap;

use heist::model::{Architecture, Model, ModelError};
use heist::train::init_params;
use heist_tests::seeded_rng;
use safetensors::tensor::TensorView;
use safetensors::Dtype;

fn random_model(arch: Architecture, seed: u64) -> Model {
    let params = init_params(arch, &mut seeded_rng("model-file", seed));
    Model::new(arch, params).expect("right length")
}

/// Writes tensors (name, shape, f32 values) with optional metadata, as PyTorch would.
fn write_tensors(
    tensors: &[(String, Vec<usize>, Vec<f32>)],
    meta: Option<HashMap<String, String>>,
) -> Vec<u8> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .zip(&bytes)
        .map(|((n, s, _), b)| {
            (
                n.clone(),
                TensorView::new(Dtype::F32, s.clone(), b).expect("view"),
            )
        })
        .collect();
    safetensors::serialize(views, &meta).expect("serialize")
}

fn tensors_of(model: &Model) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    model
        .network()
        .tensors()
        .into_iter()
        .map(|t| {
            (
                t.name.clone(),
                t.shape.clone(),
                model.params()[t.range].to_vec(),
            )
        })
        .collect()
}

fn images(n: usize, seed: u64) -> Vec<f32> {
    use rand_core::RngCore;
    let mut rng = seeded_rng("images", seed);
    (0..n * 784)
        .map(|_| (rng.next_u32() % 256) as f32 / 255.0)
        .collect()
}

#[test]
fn save_load_round_trips_weights_metadata_and_scores() {
    for (i, arch) in Architecture::ALL.into_iter().enumerate() {
        let mut model = random_model(arch, i as u64);
        model.info.set("seed", 42);
        let bytes = model.to_bytes().expect("serialize");
        let back = Model::from_bytes(&bytes, "mem", None).expect("loads");
        assert_eq!(back.architecture(), arch);
        assert_eq!(back.params(), model.params());
        assert_eq!(back.info.get("seed"), Some("42"));
        assert_eq!(back.info.get("format"), Some(heist::model::FORMAT));
        let x = images(5, 1);
        assert_eq!(back.scores(&x), model.scores(&x));
        assert_eq!(back.predict(&x).len(), 5);
    }
}

#[test]
fn architecture_is_inferred_from_shapes_without_metadata() {
    for arch in Architecture::ALL {
        let model = random_model(arch, 3);
        let bytes = write_tensors(&tensors_of(&model), None);
        let back = Model::from_bytes(&bytes, "torch.safetensors", None).expect("inferred");
        assert_eq!(back.architecture(), arch);
        assert_eq!(back.params(), model.params());
        // Given explicitly, it must agree with the shapes.
        let other = if arch == Architecture::Mnist {
            Architecture::Fashion
        } else {
            Architecture::Mnist
        };
        let err =
            Model::from_bytes(&bytes, "torch.safetensors", Some(other)).expect_err("wrong arch");
        assert!(matches!(err, ModelError::Tensor { .. }), "{err:?}");
    }
}

#[test]
fn metadata_conflicting_with_the_request_is_rejected() {
    let bytes = random_model(Architecture::Mnist, 4)
        .to_bytes()
        .expect("serialize");
    let err = Model::from_bytes(&bytes, "m", Some(Architecture::Fashion)).expect_err("conflict");
    assert!(
        matches!(
            err,
            ModelError::ArchitectureConflict {
                wanted: Architecture::Fashion,
                ..
            }
        ),
        "{err:?}"
    );
    let meta = HashMap::from([("architecture".to_owned(), "resnet".to_owned())]);
    let bytes = write_tensors(
        &tensors_of(&random_model(Architecture::Mnist, 4)),
        Some(meta),
    );
    let err = Model::from_bytes(&bytes, "m", None).expect_err("unknown arch");
    assert!(
        matches!(
            err,
            ModelError::Metadata {
                key: "architecture",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn wrong_shapes_names_types_and_values_are_rejected() {
    let good = tensors_of(&random_model(Architecture::Mnist, 5));
    let meta = || {
        Some(HashMap::from([(
            "architecture".to_owned(),
            "mnist".to_owned(),
        )]))
    };
    let expect_tensor_error =
        |tensors: Vec<(String, Vec<usize>, Vec<f32>)>, name: &str, what: &str| {
            let bytes = write_tensors(&tensors, meta());
            let err = Model::from_bytes(&bytes, "bad.safetensors", None).expect_err(what);
            match &err {
                ModelError::Tensor { name: n, file, .. } => {
                    assert_eq!(n, name, "{what}");
                    assert_eq!(file, "bad.safetensors");
                }
                other => panic!("{what}: unexpected {other:?}"),
            }
        };
    // fc1 transposed: same number of values, wrong layout.
    let mut t = good.clone();
    t[2].1 = vec![980, 100];
    expect_tensor_error(t, "fc1.weight", "transposed");
    // A missing bias.
    let t: Vec<_> = good.iter().filter(|x| x.0 != "fc2.bias").cloned().collect();
    expect_tensor_error(t, "fc2.bias", "missing");
    // An extra tensor.
    let mut t = good.clone();
    t.push(("fc3.weight".to_owned(), vec![1], vec![0.0]));
    expect_tensor_error(t, "fc3.weight", "extra");
    // A NaN.
    let mut t = good.clone();
    t[1].2[2] = f32::NAN;
    expect_tensor_error(t, "conv.bias", "NaN");
    // Without metadata, shapes matching nothing are an error listing what was found.
    let mut t = good.clone();
    t[2].1 = vec![980, 100];
    let err = Model::from_bytes(&write_tensors(&t, None), "x", None).expect_err("no match");
    assert!(matches!(err, ModelError::UnknownShapes { .. }), "{err:?}");
    // Another dtype.
    let b: Vec<u8> = vec![0; 8 * 5];
    let mut views: Vec<(String, TensorView<'_>)> = Vec::new();
    let bytes: Vec<Vec<u8>> = good
        .iter()
        .map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    for ((n, s, _), data) in good.iter().zip(&bytes) {
        if n == "conv.bias" {
            views.push((
                n.clone(),
                TensorView::new(Dtype::F64, vec![5], &b).expect("view"),
            ));
        } else {
            views.push((
                n.clone(),
                TensorView::new(Dtype::F32, s.clone(), data).expect("view"),
            ));
        }
    }
    let file = safetensors::serialize(views, &meta()).expect("serialize");
    let err = Model::from_bytes(&file, "x", None).expect_err("f64");
    assert!(err.to_string().contains("dtype F64"), "{err}");
}

#[test]
fn garbage_is_a_format_error_and_never_panics() {
    let mut rng = seeded_rng("garbage", 8);
    use rand_core::RngCore;
    let good = random_model(Architecture::Fashion, 6)
        .to_bytes()
        .expect("serialize");
    for len in [0usize, 7, 8, 100] {
        let mut v = vec![0u8; len];
        rng.fill_bytes(&mut v);
        assert!(Model::from_bytes(&v, "g", None).is_err());
    }
    // Every truncation of a valid file is rejected.
    for cut in (0..good.len()).step_by(997) {
        let err = Model::from_bytes(&good[..cut], "cut", None).expect_err("truncated");
        assert!(
            matches!(err, ModelError::Format { .. }),
            "cut {cut}: {err:?}"
        );
    }
}

#[test]
fn input_gradient_matches_finite_differences_in_f32() {
    let model = random_model(Architecture::Mnist, 9);
    let x = images(1, 2);
    let label = [4u8];
    let g = model.input_gradient(&x, &label);
    // The loss through scores (f64 softmax on the f32 scores).
    let loss = |x: &[f32]| {
        let z = model.scores(x);
        let m = z.iter().cloned().fold(f32::MIN, f32::max) as f64;
        let s: f64 = z.iter().map(|&v| (v as f64 - m).exp()).sum();
        s.ln() - (z[4] as f64 - m)
    };
    // Pick the pixels with the largest gradients, where f32 differences are meaningful.
    let mut idx: Vec<usize> = (0..784).collect();
    idx.sort_by(|&a, &b| g[b].abs().total_cmp(&g[a].abs()));
    let h = 1e-2f32;
    for &i in &idx[..10] {
        let (mut up, mut down) = (x.clone(), x.clone());
        up[i] += h;
        down[i] -= h;
        let numeric = (loss(&up) - loss(&down)) / (2.0 * f64::from(h));
        let analytic = f64::from(g[i]);
        assert!(
            (analytic - numeric).abs() <= 0.05 * analytic.abs() + 1e-4,
            "pixel {i}: analytic {analytic} vs numeric {numeric}"
        );
    }
}
