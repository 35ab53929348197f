//! Weights as safetensors with PyTorch state-dict names: exact round trip, and
//! clear errors for files of another model.

use layerlab::io::weights;
use layerlab::Model;

#[test]
fn save_and_load_round_trip_exactly() {
    let spec = layerlab::preset("seed-cnn").unwrap();
    let a = Model::new(&spec).unwrap();
    let bytes = weights::save_parameters(&a.parameters()).unwrap();
    let mut other = spec.clone();
    other.training.seed = 42;
    let b = Model::new(&other).unwrap();
    assert_ne!(a.parameters()[0].1.to_vec(), b.parameters()[0].1.to_vec());
    weights::load_parameters(&b.parameters(), &bytes).unwrap();
    for ((na, pa), (nb, pb)) in a.parameters().iter().zip(b.parameters()) {
        assert_eq!(na, &nb);
        assert_eq!(
            pa.to_vec().iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            pb.to_vec().iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            "{na}"
        );
    }
    let all = weights::read_all(&bytes).unwrap();
    assert_eq!(all["0.weight"].shape(), &[32, 1, 3, 3]);
    assert_eq!(all["6.weight"].shape(), &[64, 576]);
    assert_eq!(all.len(), 10);
}

#[test]
fn a_file_of_another_model_is_refused_without_changes() {
    let cnn = Model::new(&layerlab::preset("seed-cnn").unwrap()).unwrap();
    let mlp = Model::new(&layerlab::preset("mlp").unwrap()).unwrap();
    let before = mlp.parameters()[0].1.to_vec();
    let e = weights::load_parameters(&mlp.parameters(), &weights::save_parameters(&cnn.parameters()).unwrap())
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "weights: the file has no tensor \"1.weight\" (shape [128, 784]); it was saved from a different model"
    );
    assert_eq!(mlp.parameters()[0].1.to_vec(), before);

    // Same names, other shapes.
    let spec = layerlab::ModelSpec::from_json(r#"{"input": {"dataset": "mnist"}, "layers": [{"type": "Flatten"}, {"type": "Dense", "units": 64}, {"type": "Dropout", "rate": 0.1}, {"type": "Dense", "units": 10}]}"#).unwrap();
    let small = Model::new(&spec).unwrap();
    let e = weights::load_parameters(&small.parameters(), &weights::save_parameters(&mlp.parameters()).unwrap())
        .unwrap_err()
        .to_string();
    assert_eq!(e, "weights: tensor \"1.weight\" has shape [128, 784] but the model needs [64, 784]");

    assert!(weights::load_parameters(&mlp.parameters(), b"not a safetensors file")
        .unwrap_err()
        .to_string()
        .starts_with("weights: not a valid safetensors file"));
}

/// Every valid form of a safetensors file loads: a header with `__metadata__`
/// (PyTorch writes `{"format": "pt"}`), and F16, BF16 and F64 weights (a model
/// saved in half or double precision), converted to f32.
#[test]
fn safetensors_with_metadata_and_other_float_types_load() {
    use safetensors::tensor::{Dtype, TensorView};
    let model = Model::new(&layerlab::preset("mlp").unwrap()).unwrap();
    let params = model.parameters();
    let meta = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
    let arrays: Vec<(String, layerlab::tensor::Array)> =
        params.iter().map(|(n, t)| (n.clone(), t.to_array())).collect();
    let with_meta = weights::to_bytes_with(&arrays, Some(meta)).unwrap();
    weights::load_parameters(&params, &with_meta).unwrap();
    assert_eq!(weights::read_metadata(&with_meta).unwrap()["format"], "pt");

    // Values exactly representable in each type: k / 64 for small k.
    let exact = |n: usize| (0..n).map(|i| ((i % 97) as f32 - 48.0) / 64.0).collect::<Vec<f32>>();
    type Encode = fn(f32) -> Vec<u8>;
    let encodings: [(Dtype, Encode); 3] = [
        (Dtype::F64, |v| (v as f64).to_le_bytes().to_vec()),
        (Dtype::BF16, |v| ((v.to_bits() >> 16) as u16).to_le_bytes().to_vec()),
        // binary16 for k / 64 with |k| <= 48: exponent and fraction by hand.
        (Dtype::F16, |v| {
            if v == 0.0 {
                return 0u16.to_le_bytes().to_vec();
            }
            let bits = v.to_bits();
            let sign = ((bits >> 16) & 0x8000) as u16;
            let exp = (((bits >> 23) & 0xff) as i32 - 127 + 15) as u16;
            let frac = ((bits >> 13) & 0x3ff) as u16;
            (sign | (exp << 10) | frac).to_le_bytes().to_vec()
        }),
    ];
    for (dtype, encode) in encodings {
        let data: Vec<(String, Vec<usize>, Vec<u8>)> = params
            .iter()
            .map(|(n, t)| {
                (n.clone(), t.shape(), exact(t.shape().iter().product()).into_iter().flat_map(encode).collect())
            })
            .collect();
        let views: Vec<(String, TensorView)> =
            data.iter().map(|(n, s, d)| (n.clone(), TensorView::new(dtype, s.clone(), d).unwrap())).collect();
        let bytes = safetensors::tensor::serialize(views, None).unwrap();
        weights::load_parameters(&params, &bytes).unwrap_or_else(|e| panic!("{dtype:?}: {e}"));
        for (_, t) in &params {
            assert_eq!(t.to_vec(), exact(t.shape().iter().product()), "{dtype:?}");
        }
    }
}
