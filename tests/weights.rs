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
        assert_eq!(pa.to_vec().iter().map(|v| v.to_bits()).collect::<Vec<_>>(), pb.to_vec().iter().map(|v| v.to_bits()).collect::<Vec<_>>(), "{na}");
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
    let e = weights::load_parameters(&mlp.parameters(), &weights::save_parameters(&cnn.parameters()).unwrap()).unwrap_err().to_string();
    assert_eq!(e, "weights: the file has no tensor \"1.weight\" (shape [128, 784]); it was saved from a different model");
    assert_eq!(mlp.parameters()[0].1.to_vec(), before);

    // Same names, other shapes.
    let spec = layerlab::ModelSpec::from_json(r#"{"input": {"dataset": "mnist"}, "layers": [{"type": "Flatten"}, {"type": "Dense", "units": 64}, {"type": "Dropout", "rate": 0.1}, {"type": "Dense", "units": 10}]}"#).unwrap();
    let small = Model::new(&spec).unwrap();
    let e = weights::load_parameters(&small.parameters(), &weights::save_parameters(&mlp.parameters()).unwrap()).unwrap_err().to_string();
    assert_eq!(e, "weights: tensor \"1.weight\" has shape [128, 784] but the model needs [64, 784]");

    assert!(weights::load_parameters(&mlp.parameters(), b"not a safetensors file").unwrap_err().to_string().starts_with("weights: not a valid safetensors file"));
}
