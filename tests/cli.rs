//! The native CLI end to end: info, train, step (gradients for another framework
//! to compare with), and its error messages.

use std::path::PathBuf;

use layerlab::io::weights;
use layerlab::nn::{Mode, Model};
use layerlab::Tensor;
use safetensors::tensor::{Dtype, TensorView};

mod common;
use common::cli;

/// `name` in a folder of its own (no two calls, and so no two tests, share one).
fn tmp(name: &str) -> PathBuf {
    common::unique_dir("cli").join(name)
}

#[test]
fn info_prints_shapes_and_counts() {
    let (code, out, err) = cli(&["info", "--model", "assets/presets/seed-cnn.json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["total_params"], 93_322);
    assert!(err.contains("[64, 3, 3] -> [576]"), "{err}");
}

#[test]
fn info_reports_an_invalid_model() {
    let path = tmp("bad.json");
    std::fs::write(&path, r#"{"input": {"dataset": "mnist"}, "layers": [{"type": "Conv2D", "filters": 8, "kernel_size": 3}, {"type": "Dense", "units": 10}]}"#).unwrap();
    let (code, out, err) = cli(&["info", "--model", path.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert_eq!(
        err.trim(),
        "error: invalid model: layer 1 Dense: expects a flat input but gets [8, 26, 26]; insert Flatten before it"
    );
    let (code, _, err) = cli(&["info", "--model", "no-such-model.json"]);
    assert_eq!(code, 1);
    assert!(err.contains("no-such-model.json: No such file"), "{err}");
}

#[test]
fn train_reports_json_and_saves_weights() {
    let save = tmp("mlp.safetensors");
    let (code, out, err) = cli(&[
        "train",
        "--model",
        "mlp",
        "--limit-train",
        "3000",
        "--limit-test",
        "500",
        "--seed",
        "2",
        "--save",
        save.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    for key in ["test_accuracy", "final_loss", "train_samples_per_s", "seconds"] {
        assert!(v[key].is_number(), "{key} in {out}");
    }
    assert!(v["test_accuracy"].as_f64().unwrap() > 0.75, "{out}");
    assert_eq!(v["steps"], 47);
    let model = Model::new(&layerlab::preset("mlp").unwrap()).unwrap();
    weights::load_parameters(&model.parameters(), &std::fs::read(&save).unwrap()).unwrap();

    // Training can start from saved weights, and refuses those of another model.
    let (code, out, err) = cli(&[
        "train",
        "--model",
        "mlp",
        "--limit-train",
        "640",
        "--limit-test",
        "500",
        "--weights",
        save.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert!(v["test_accuracy"].as_f64().unwrap() > 0.75, "continues from the trained weights: {out}");
    let (code, _, err) =
        cli(&["train", "--model", "seed-cnn", "--limit-train", "64", "--weights", save.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("mlp.safetensors: weights: the file has no tensor \"0.weight\""), "{err}");
}

/// `--threads N` trains data-parallel on the CPU (the result as one
/// thread's, to float tolerance), `bench` reports the threads, and a count
/// out of range is refused with the flag's name.
#[test]
fn threads_train_data_parallel() {
    // The Seed CNN has no dropout (whose masks differ with the threads).
    let args = ["--model", "seed-cnn", "--limit-train", "640", "--limit-test", "500", "--seed", "3"];
    let run = |threads: &str| {
        let (code, out, err) = cli(&[&["train", "--threads", threads][..], &args[..]].concat());
        assert_eq!(code, 0, "{err}");
        serde_json::from_str::<serde_json::Value>(out.trim()).unwrap()
    };
    let (one, two) = (run("1"), run("2"));
    let (a, b) = (one["final_loss"].as_f64().unwrap(), two["final_loss"].as_f64().unwrap());
    assert!((a - b).abs() < 1e-3 * a.max(1.0), "final loss {a} with 1 thread, {b} with 2");
    assert!((one["test_accuracy"].as_f64().unwrap() - two["test_accuracy"].as_f64().unwrap()).abs() < 0.005);
    let (code, out, err) = cli(&[
        "bench",
        "--model",
        "mlp",
        "--threads",
        "2",
        "--steps",
        "5",
        "--warmup",
        "1",
        "--runs",
        "1",
        "--limit-test",
        "100",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(serde_json::from_str::<serde_json::Value>(out.trim()).unwrap()["threads"], 2, "{out}");
    let (code, _, err) = cli(&["train", "--threads", "0", "--model", "mlp"]);
    assert_ne!(code, 0);
    assert!(err.contains("--threads"), "{err}");
}

#[test]
fn a_run_saved_as_a_checkpoint_goes_on_exactly() {
    let (whole, first, resumed, ckpt) =
        (tmp("whole.safetensors"), tmp("first.safetensors"), tmp("resumed.safetensors"), tmp("run.ckpt.safetensors"));
    let train = |extra: &[&str]| {
        let mut args = vec!["train", "--model", "mlp", "--limit-train", "640", "--limit-test", "100"];
        args.extend_from_slice(extra);
        let (code, out, err) = cli(&args);
        assert_eq!(code, 0, "{err}");
        serde_json::from_str::<serde_json::Value>(out.trim()).unwrap()
    };
    // Two epochs in one go, or one, a checkpoint, and the second from it.
    assert_eq!(train(&["--epochs", "2", "--save", whole.to_str().unwrap()])["steps"], 20);
    assert_eq!(
        train(&["--epochs", "1", "--save", first.to_str().unwrap(), "--checkpoint", ckpt.to_str().unwrap()])["steps"],
        10
    );
    // The checkpoint's weights are the run's, under the same names.
    let ckpt_tensors = weights::read_all(&std::fs::read(&ckpt).unwrap()).unwrap();
    assert_eq!(ckpt_tensors["1.weight"], weights::read_all(&std::fs::read(&first).unwrap()).unwrap()["1.weight"]);
    assert!(ckpt_tensors.contains_key("optimizer.v.1.weight"));
    assert_eq!(
        train(&["--epochs", "2", "--resume", ckpt.to_str().unwrap(), "--save", resumed.to_str().unwrap()])["steps"],
        20
    );
    assert_eq!(
        std::fs::read(&resumed).unwrap(),
        std::fs::read(&whole).unwrap(),
        "the resumed run ends with the same weights"
    );
    // Another model, or a weights file given as a checkpoint: a message, exit 1.
    let (code, _, err) =
        cli(&["train", "--model", "seed-cnn", "--limit-train", "640", "--resume", ckpt.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("run.ckpt.safetensors: the file has no tensor \"0.weight\" (shape [32, 1, 3, 3])"), "{err}");
    let (code, _, err) = cli(&["train", "--model", "mlp", "--limit-train", "64", "--resume", whole.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("whole.safetensors: this is not a layerlab checkpoint"), "{err}");
}

fn write_batch(path: &PathBuf, x: &[f32], x_shape: &[usize], y: &[i64]) {
    let xb: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    let yb: Vec<u8> = y.iter().flat_map(|v| v.to_le_bytes()).collect();
    let views = vec![
        ("x", TensorView::new(Dtype::F32, x_shape.to_vec(), &xb).unwrap()),
        ("y", TensorView::new(Dtype::I64, vec![y.len()], &yb).unwrap()),
    ];
    std::fs::write(path, safetensors::tensor::serialize(views, None).unwrap()).unwrap();
}

#[test]
fn step_writes_the_gradients_of_one_batch() {
    let spec = layerlab::preset("seed-cnn").unwrap();
    let model = Model::new(&spec).unwrap();
    let (w, b, g) = (tmp("w.safetensors"), tmp("b.safetensors"), tmp("g.safetensors"));
    std::fs::write(&w, weights::save_parameters(&model.parameters()).unwrap()).unwrap();
    let x: Vec<f32> = (0..3 * 784).map(|i| ((i * 37) % 255) as f32 / 255.0).collect();
    let y = [3i64, 1, 4];
    write_batch(&b, &x, &[3, 1, 28, 28], &y);
    let (code, out, err) = cli(&[
        "step",
        "--model",
        "seed-cnn",
        "--weights",
        w.to_str().unwrap(),
        "--batch",
        b.to_str().unwrap(),
        "--grads",
        g.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();

    // The same pass in-process gives the same loss and gradients.
    let loss =
        model.forward_logits(&Tensor::from_vec(&[3, 1, 28, 28], x), Mode::Eval).softmax_cross_entropy(&[3, 1, 4]);
    loss.backward();
    assert!((v["loss"].as_f64().unwrap() as f32 - loss.item()).abs() < 1e-6);
    let grads = weights::read_all(&std::fs::read(&g).unwrap()).unwrap();
    assert_eq!(grads.len(), 10);
    for (name, p) in model.parameters() {
        let expected = p.grad().unwrap().to_owned();
        assert_eq!(grads[&name].shape(), expected.shape(), "{name}");
        assert!(
            grads[&name].iter().zip(expected.iter()).all(|(a, b)| (a - b).abs() <= 1e-6 * (1.0 + b.abs())),
            "{name}"
        );
    }
}

#[test]
fn step_rejects_a_batch_of_the_wrong_shape() {
    let model = Model::new(&layerlab::preset("mlp").unwrap()).unwrap();
    let (w, b, g) = (tmp("w2.safetensors"), tmp("b2.safetensors"), tmp("g2.safetensors"));
    std::fs::write(&w, weights::save_parameters(&model.parameters()).unwrap()).unwrap();
    write_batch(&b, &[0.0; 2 * 784], &[2, 784], &[1, 2]);
    let args = [
        "step",
        "--model",
        "mlp",
        "--weights",
        w.to_str().unwrap(),
        "--batch",
        b.to_str().unwrap(),
        "--grads",
        g.to_str().unwrap(),
    ];
    let (code, _, err) = cli(&args);
    assert_eq!(code, 1);
    assert!(err.contains("\"x\" has shape [2, 784] but the model takes [batch, 1, 28, 28]"), "{err}");
    write_batch(&b, &[0.0; 2 * 784], &[2, 1, 28, 28], &[1, 10]);
    let (code, _, err) = cli(&args);
    assert_eq!(code, 1);
    assert!(err.contains("label 10 in \"y\" is outside 0..9"), "{err}");
    // A gradient over an empty batch would be a mean over nothing.
    write_batch(&b, &[], &[0, 1, 28, 28], &[]);
    let (code, _, err) = cli(&args);
    assert_eq!(code, 1);
    assert!(err.contains("\"x\" holds no example"), "{err}");
}

#[test]
fn export_writes_pytorch_code_weights_and_data() {
    // Trained weights in, the same weights out under the same names.
    let saved = tmp("export-start.safetensors");
    let (code, _, err) = cli(&[
        "train",
        "--model",
        "mlp",
        "--limit-train",
        "256",
        "--limit-test",
        "100",
        "--save",
        saved.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let out = tmp("export-mlp");
    let (code, stdout, err) = cli(&[
        "export",
        "--model",
        "mlp",
        "--weights",
        saved.to_str().unwrap(),
        "--format",
        "pytorch",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["files"].as_array().unwrap().len(), 11, "{v}");
    for f in ["model.py", "train.py", "check.py", "README.md", "model.json", "mnist/t10k-labels-idx1-ubyte.gz"] {
        assert!(out.join(f).exists(), "{f}");
    }
    assert_eq!(
        weights::read_all(&std::fs::read(out.join("weights.safetensors")).unwrap()).unwrap(),
        weights::read_all(&std::fs::read(&saved).unwrap()).unwrap()
    );
    // A sequence task needs no data files; a bad format or weights file is named.
    let out = tmp("export-reverse");
    assert_eq!(cli(&["export", "--model", "reverse-lstm", "--out", out.to_str().unwrap()]).0, 0);
    assert!(!out.join("mnist").exists());
    let (code, _, err) = cli(&["export", "--model", "mlp", "--format", "onnx", "--out", out.to_str().unwrap()]);
    assert!(code != 0 && err.contains("unknown export format \"onnx\"; use pytorch or keras"), "{err}");
    let (code, _, err) =
        cli(&["export", "--model", "seed-cnn", "--weights", saved.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(code != 0 && err.contains("export-start.safetensors"), "{err}");
}
