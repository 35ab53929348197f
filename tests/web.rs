//! The engine inside headless Chromium (wasm-bindgen-test): shape inference,
//! gradients and a few training steps on real MNIST digits, compiled to wasm32.
#![cfg(target_arch = "wasm32")]

use layerlab::data::Mnist;
use layerlab::{ModelSpec, Trainer};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const TEST_IMAGES: &[u8] = include_bytes!("../assets/mnist/t10k-images-idx3-ubyte.gz");
const TEST_LABELS: &[u8] = include_bytes!("../assets/mnist/t10k-labels-idx1-ubyte.gz");

#[wasm_bindgen_test]
fn presets_infer_in_the_browser() {
    let info = layerlab::preset("seed-cnn").unwrap().infer().unwrap();
    assert_eq!(info.total_params, 93_322);
    let e = ModelSpec::from_json(r#"{"input": {"dataset": "mnist"}, "layers": [{"type": "Dense", "units": 10}]}"#).unwrap().infer().unwrap_err();
    assert_eq!(e.to_string(), "layer 0 Dense: expects a flat input but gets [1, 28, 28]; insert Flatten before it");
}

#[wasm_bindgen_test]
fn a_cnn_trains_on_mnist_in_the_browser() {
    let mut data = Mnist::from_idx("t10k-images", TEST_IMAGES, "t10k-labels", TEST_LABELS).unwrap();
    assert_eq!(data.len(), 10_000);
    data.truncate(1_000);
    let spec = ModelSpec::from_json(
        r#"{"input": {"dataset": "mnist"}, "layers": [
            {"type": "Conv2D", "filters": 8, "kernel_size": 3, "activation": "relu"},
            {"type": "MaxPool2D", "pool_size": 2}, {"type": "Flatten"}, {"type": "Dense", "units": 10}],
            "training": {"batch_size": 32}}"#,
    )
    .unwrap();
    let mut trainer = Trainer::new(&spec, data.clone(), data).unwrap();
    let losses: Vec<f32> = (0..30).map(|_| trainer.step().unwrap().loss).collect();
    let first: f32 = losses[..5].iter().sum::<f32>() / 5.0;
    let last: f32 = losses[25..].iter().sum::<f32>() / 5.0;
    assert!(last < 0.7 * first, "{losses:?}");
    assert!(losses.iter().all(|l| l.is_finite()));
}
