//! Inputs modelled on real bug reports against peer tools, which layerlab once
//! got wrong (`tests/regressions/*.json`, from `shared/regressions`), and the
//! other places each kind of fault could occur. Every expected value is the
//! right one, not what the code happened to do.

use std::path::{Path, PathBuf};
use std::process::Command;

use layerlab::data::{Data, Mnist};
use layerlab::escape;
use layerlab::nn::spec::Fix;
use layerlab::{Error, Model, ModelSpec, Trainer};

mod common;
use common::cli;

fn regression(name: &str) -> ModelSpec {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/regressions").join(name);
    ModelSpec::from_json(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

// ---------------------------------------------------------------------------
// 1. User text in generated code, Markdown and file names.

/// Names that would end a Python string, docstring or comment, a Markdown
/// line, or a path component, if pasted raw.
fn hostile_names() -> Vec<String> {
    let mut names: Vec<String> = ["export-name-closes-docstring.json", "export-name-backslash.json"]
        .iter()
        .map(|f| regression(f).name)
        .collect();
    names.extend(
        [
            "\"\"\"",
            "'''",
            "x'''\nopen('INJECTED', 'w')\n'''",
            "ends with a backslash\\",
            "\\N{BULLET} \\x41 \\u0041 {braces} %s",
            "line\nbreak\r\nand\ttab",
            "nul\0byte",
            "\u{2028}line separator\u{85}",
            "héllo wörld 😀 模型",
            "../../etc/passwd",
            "..\\..\\windows",
            "<script>alert(1)</script> [link](javascript:x) # heading",
            "",
        ]
        .map(String::from),
    );
    names.push("long ".repeat(2000));
    names
}

#[test]
fn exported_names_stay_text_and_never_run() {
    let spec = regression("export-name-backslash.json");
    for name in hostile_names() {
        for format in ["pytorch", "keras"] {
            let mut spec = spec.clone();
            spec.name = name.clone();
            let (dir, files) = common::export_to(&Model::new(&spec).unwrap(), format, "hostile-name");
            let shown = escape::shorten(layerlab::io::export::model_name(&spec));
            // Python reads the docstring back as the name itself: nothing ended it early.
            let check = format!(
                "import ast, sys\nfor f in ['model.py', 'train.py', 'check.py']:\n    compile(open(f, encoding='utf-8').read(), f, 'exec')\n\
                 doc = ast.get_docstring(ast.parse(open('model.py', encoding='utf-8').read()), clean=False)\n\
                 want = {}\nsys.exit(0 if doc.startswith('The ' + want + ' model') else 'docstring: ' + repr(doc[:200]))\n",
                escape::python_str(&shown)
            );
            let out = Command::new("python3").args(["-c", &check]).current_dir(&dir).output().unwrap();
            assert!(out.status.success(), "{format} {name:?}: {}", String::from_utf8_lossy(&out.stderr));
            // Running model.py (it stops at `import torch`/`keras` where they are
            // missing) must not run anything the name carried.
            let _ = Command::new("python3").arg("model.py").current_dir(&dir).output().unwrap();
            assert!(!dir.join("INJECTED").exists(), "{format} {name:?}: the name ran as code");
            // The README's first line is one heading, with the name as literal text.
            let readme = String::from_utf8(files.iter().find(|f| f.0 == "README.md").unwrap().1.clone()).unwrap();
            let first = readme.lines().next().unwrap();
            assert!(
                first.starts_with("# ") && !first[2..].starts_with('#') && !first.replace("\\<", "").contains('<'),
                "{format} {name:?}: {first}"
            );
            assert!(readme.lines().nth(1) == Some(""), "{format} {name:?}: the name broke the heading");
            // A folder or zip entry named after the model stays inside its folder.
            let stem = escape::file_stem(&name, "model");
            assert!(
                !stem.is_empty()
                    && stem.len() <= 64
                    && stem.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "{stem}"
            );
            let zip = layerlab::io::export::zip(&format!("{stem}-{format}"), &files).unwrap();
            for (entry, _) in layerlab::io::export::unzip(&zip, 1 << 30).unwrap() {
                assert!(files.iter().any(|f| f.0 == entry), "{entry}");
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

/// The two inputs of the report, run as the recipient would: `model.py` must
/// compile and create no file (with torch and keras where the test command
/// installed them, `check.py` too).
#[test]
fn the_reported_names_compile_and_inject_nothing() {
    let python = std::env::var("LAYERLAB_PYTHON").ok();
    for file in ["export-name-closes-docstring.json", "export-name-backslash.json"] {
        for format in ["pytorch", "keras"] {
            let (dir, _) = common::export_to(&Model::new(&regression(file)).unwrap(), format, "reported-name");
            let out =
                Command::new("python3").args(["-m", "py_compile", "model.py"]).current_dir(&dir).output().unwrap();
            assert!(out.status.success(), "{file} {format}: {}", String::from_utf8_lossy(&out.stderr));
            if let Some(python) = &python {
                let out = Command::new(python)
                    .arg("check.py")
                    .current_dir(&dir)
                    .env("KERAS_BACKEND", "torch")
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{file} {format}: {}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            } else {
                let _ = Command::new("python3").arg("model.py").current_dir(&dir).output().unwrap();
            }
            assert!(!dir.join("INJECTED").exists(), "{file} {format}: the name ran as code");
        }
    }
}

/// Other user text in messages (an unknown layer type, an unknown key) is
/// quoted and escaped: no control character reaches a terminal or the page.
#[test]
fn user_text_in_messages_is_quoted() {
    let e = ModelSpec::from_json(
        "{\"input\": {\"dataset\": \"mnist\"}, \"layers\": [{\"type\": \"Dense\\u001b[31m\\n\"}]}",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains(r#"unknown layer type "Dense\u{1b}[31m\n""#) && !e.contains('\u{1b}') && !e.contains('\n'),
        "{e}"
    );
    let e = ModelSpec::from_json("{\"input\": {\"dataset\": \"mnist\"}, \"layers\": [], \"x\\u0007\": 1}")
        .unwrap_err()
        .to_string();
    assert!(e.contains(r#"unknown key "x\u{7}""#) && !e.contains('\u{7}'), "{e}");
}

// ---------------------------------------------------------------------------
// 2. The output softmax is applied once.

/// `-log softmax(W x + b)[y]`, by hand in f64, for a model whose only weights
/// are one Dense layer's.
fn loss_by_hand(model: &Model, pixels: &[f32], label: usize) -> f64 {
    let params = model.parameters();
    let w = params[0].1.value().clone();
    let b = params[1].1.value().clone();
    let z: Vec<f64> =
        (0..10).map(|k| b[[k]] as f64 + (0..784).map(|i| w[[k, i]] as f64 * pixels[i] as f64).sum::<f64>()).collect();
    let max = z.iter().cloned().fold(f64::MIN, f64::max);
    let log_sum = z.iter().map(|v| (v - max).exp()).sum::<f64>().ln() + max;
    log_sum - z[label]
}

fn one_test_digit_loss(spec: &ModelSpec) -> (f64, f64) {
    let (train, test) = common::mnist(64, 1);
    let pixels: Vec<f32> = test.image(0).iter().map(|&p| p as f32 / 255.0).collect();
    let label = test.labels[0] as usize;
    let trainer = Trainer::new(spec, train, test).unwrap();
    (trainer.evaluate(None).loss as f64, loss_by_hand(&trainer.model, &pixels, label))
}

#[test]
fn softmax_then_dropout_is_refused_with_its_fix() {
    let spec = regression("softmax-then-dropout.json");
    let e = spec.infer().unwrap_err();
    assert_eq!(e.layer, Some(1));
    assert!(e.to_string().starts_with("layer 1 Dropout: comes after the output softmax of layer 0 Dense"), "{e}");
    assert_eq!(e.fix, Some(Fix::Remove { index: 1 }));
    // The fixed stack reads the softmax once: -log p[y] for the same weights.
    let mut fixed = spec.clone();
    e.fix.unwrap().apply(&mut fixed.layers);
    assert_eq!(fixed.infer().unwrap().softmax_output, Some(0));
    let (loss, by_hand) = one_test_digit_loss(&fixed);
    assert!((loss - by_hand).abs() < 1e-5, "{loss} vs {by_hand}");
}

#[test]
fn a_softmax_before_flatten_or_reshape_is_the_output_softmax() {
    let mnist_row = r#"{"dataset": "mnist", "shape": [1, 784]}"#;
    for layers in [
        r#"[{"type": "Dense", "units": 10}, {"type": "Softmax"}, {"type": "Flatten"}]"#,
        r#"[{"type": "Dense", "units": 10, "activation": "softmax"}, {"type": "Reshape", "target_shape": [10]}]"#,
        r#"[{"type": "Dense", "units": 10, "activation": "softmax"}, {"type": "Flatten"}, {"type": "Reshape", "target_shape": [-1]}]"#,
    ] {
        let spec = common::spec(mnist_row, layers);
        let (loss, by_hand) = one_test_digit_loss(&spec);
        assert!(
            (loss - by_hand).abs() < 1e-5,
            "{layers}: {loss} vs {by_hand} (a double softmax gives a far larger loss)"
        );
        // Both exporters leave that softmax out too (the loss takes logits).
        let info = spec.infer().unwrap();
        for code in [layerlab::io::export::model_py(&spec, &info), layerlab::io::keras::model_py(&spec, &info)] {
            assert_eq!(code.matches("(softmax left out: the loss takes logits)").count(), 1, "{code}");
            assert!(!code.contains("nn.Softmax") && !code.contains("\"softmax\""), "{code}");
        }
    }
    // A hidden softmax (more layers follow that change values) stays a softmax.
    let hidden = common::spec(
        mnist_row,
        r#"[{"type": "Dense", "units": 10, "activation": "softmax"}, {"type": "Flatten"}, {"type": "Dense", "units": 10}]"#,
    );
    assert_eq!(hidden.infer().unwrap().softmax_output, None);
}

#[test]
fn stacks_that_would_read_probabilities_as_logits_are_refused() {
    let mnist = r#"{"dataset": "mnist", "shape": [784]}"#;
    let err = |layers: &str| common::spec(mnist, layers).infer().unwrap_err();
    let e = err(r#"[{"type": "Dense", "units": 10, "activation": "softmax"}, {"type": "Softmax"}]"#);
    assert!(
        e.to_string()
            .starts_with("layer 1 Softmax: its input is already probabilities, from the softmax of layer 0 Dense"),
        "{e}"
    );
    assert_eq!(e.fix, Some(Fix::Remove { index: 1 }));
    let e = err(
        r#"[{"type": "Dense", "units": 10}, {"type": "Reshape", "target_shape": [10, 1]}, {"type": "Softmax"}, {"type": "Flatten"}]"#,
    );
    assert!(
        e.to_string().starts_with("layer 2 Softmax: applies softmax over the last axis of [10, 1] (1 values)"),
        "{e}"
    );
    let e = err(
        r#"[{"type": "Dense", "units": 10, "activation": "softmax"}, {"type": "Flatten"}, {"type": "Dropout", "rate": 0.1}]"#,
    );
    assert_eq!((e.layer, e.fix), (Some(2), Some(Fix::Remove { index: 2 })));
    // Sequence tasks: the same rule over the tokens' scores.
    let tokens = r#"{"dataset": "reverse", "seq_len": 4, "vocab": 5}"#;
    let spec = common::spec(
        tokens,
        r#"[{"type": "Embedding", "input_dim": 5, "output_dim": 8}, {"type": "Dense", "units": 5, "activation": "softmax"}]"#,
    );
    assert_eq!(spec.infer().unwrap().softmax_output, Some(1));
    let e = common::spec(tokens, r#"[{"type": "Embedding", "input_dim": 5, "output_dim": 8}, {"type": "Dense", "units": 5, "activation": "softmax"}, {"type": "Dropout", "rate": 0.5}]"#).infer().unwrap_err();
    assert_eq!(e.layer, Some(2));
}

// ---------------------------------------------------------------------------
// 3. Counts a user gives: stated maxima, checked arithmetic, messages naming the field.

#[test]
fn epochs_that_would_overflow_are_refused_on_the_cli() {
    let spec = regression("epochs-overflow.json");
    let e = Model::new(&spec).err().unwrap().to_string();
    assert_eq!(e, "invalid model: training: epochs must be between 1 and 1,000, got 6,148,914,691,236,517,206");
    let (code, out, err) = cli(&["train", "--model", "tests/regressions/epochs-overflow.json", "--limit-train", "192"]);
    assert_eq!((code, out.as_str()), (1, ""), "{err}");
    assert!(err.contains("epochs must be between 1 and 1,000, got 6,148,914,691,236,517,206"), "{err}");
    let (code, out, err) = cli(&["train", "--model", "mlp", "--epochs", "6148914691236517206", "--limit-train", "192"]);
    assert_eq!((code, out.as_str()), (1, ""), "{err}");
    assert!(err.contains("epochs must be between 1 and 1,000"), "{err}");
}

#[test]
fn every_count_has_a_stated_maximum_and_never_wraps() {
    let huge = "6148914691236517206";
    let cases = [
        (r#"{"dataset": "mnist", "shape": [784]}"#, format!(r#"[{{"type": "Dense", "units": {huge}}}]"#), "units"),
        (
            r#"{"dataset": "mnist", "shape": [28, 28]}"#,
            format!(r#"[{{"type": "LSTM", "units": {huge}}}, {{"type": "Dense", "units": 10}}]"#),
            "units",
        ),
        (
            r#"{"dataset": "mnist"}"#,
            format!(r#"[{{"type": "Conv2D", "filters": {huge}, "kernel_size": 3}}]"#),
            "filters",
        ),
        (
            r#"{"dataset": "mnist"}"#,
            format!(r#"[{{"type": "Conv2D", "filters": 2, "kernel_size": {huge}, "padding": "same"}}]"#),
            "kernel_size",
        ),
        (
            r#"{"dataset": "mnist"}"#,
            format!(r#"[{{"type": "Conv2D", "filters": 2, "kernel_size": 3, "strides": [1, {huge}]}}]"#),
            "strides",
        ),
        (r#"{"dataset": "mnist"}"#, format!(r#"[{{"type": "MaxPool2D", "pool_size": {huge}}}]"#), "pool_size"),
        (r#"{"dataset": "mnist"}"#, format!(r#"[{{"type": "Patchify", "patch_size": {huge}}}]"#), "patch_size"),
        (
            r#"{"dataset": "reverse", "seq_len": 4, "vocab": 5}"#,
            format!(r#"[{{"type": "Embedding", "input_dim": 5, "output_dim": {huge}}}]"#),
            "output_dim",
        ),
        (
            r#"{"dataset": "reverse", "seq_len": 4, "vocab": 5}"#,
            format!(r#"[{{"type": "Embedding", "input_dim": {huge}, "output_dim": 4}}]"#),
            "input_dim",
        ),
        (
            r#"{"dataset": "reverse", "seq_len": 4, "vocab": 5}"#,
            format!(
                r#"[{{"type": "Embedding", "input_dim": 5, "output_dim": 4}}, {{"type": "TransformerEncoder", "num_heads": 2, "ff_dim": {huge}}}]"#
            ),
            "ff_dim",
        ),
        (
            r#"{"dataset": "reverse", "seq_len": 4, "vocab": 5}"#,
            format!(
                r#"[{{"type": "Embedding", "input_dim": 5, "output_dim": 4}}, {{"type": "MultiHeadAttention", "num_heads": {huge}}}]"#
            ),
            "num_heads",
        ),
        (
            r#"{"dataset": "mnist", "shape": [784]}"#,
            format!(r#"[{{"type": "Reshape", "target_shape": [{huge}, {huge}, -1]}}]"#),
            "reshape",
        ),
        (&format!(r#"{{"dataset": "reverse", "seq_len": {huge}, "vocab": 5}}"#), "[]".to_string(), "seq_len"),
        (&format!(r#"{{"dataset": "sort", "seq_len": 4, "vocab": {huge}}}"#), "[]".to_string(), "vocab"),
        // 5 x 3689348814741910480 wraps to exactly 784 in 64 bits.
        (r#"{"dataset": "mnist", "shape": [5, 3689348814741910480]}"#, "[]".to_string(), "784"),
    ];
    for (input, layers, field) in cases {
        let e = common::spec(input, &layers).infer().unwrap_err().to_string();
        assert!(e.contains(field), "{input} {layers}: {e}");
    }
    let training = |t: &str| {
        ModelSpec::from_json(&format!(r#"{{"input": {{"dataset": "mnist", "shape": [784]}}, "layers": [{{"type": "Dense", "units": 10}}], "training": {t}}}"#)).unwrap().infer().unwrap_err().to_string()
    };
    assert_eq!(
        training(&format!(r#"{{"batch_size": {huge}}}"#)),
        "training: batch_size must be between 1 and 4,096, got 6,148,914,691,236,517,206; 64 is usual"
    );
    assert!(training(r#"{"optimizer": {"type": "Adam", "epsilon": 1e39}}"#).contains("epsilon inf"));
    // The page's fields run the same check.
    let t = layerlab::nn::spec::TrainingSpec { epochs: 1001, ..Default::default() };
    assert_eq!(t.validate().unwrap_err().message, "training: epochs must be between 1 and 1,000, got 1,001");
}

// ---------------------------------------------------------------------------
// 4. Metrics: f64 sums, and a non-finite figure is a divergence.

#[test]
fn a_huge_learning_rate_reports_finite_figures_or_a_divergence() {
    let dir = common::unique_dir("huge-lr");
    let spec = write(
        &dir,
        "linear.json",
        r#"{"name": "linear-huge-lr", "input": {"dataset": "mnist", "shape": [784]}, "layers": [{"type": "Dense", "units": 10}], "training": {"optimizer": {"type": "SGD", "lr": 1e36}, "batch_size": 64}}"#,
    );
    let (code, out, err) =
        cli(&["train", "--model", spec.to_str().unwrap(), "--limit-train", "640", "--limit-test", "100"]);
    // Every step's loss is finite (~1e36): the run succeeds, with finite figures
    // (an f32 sum of the last losses made the mean `null` here).
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    for key in ["final_loss", "test_loss", "test_accuracy"] {
        assert!(v[key].as_f64().is_some_and(f64::is_finite), "{key} in {out}");
    }
    assert!(v["final_loss"].as_f64().unwrap() > 1e30, "{out}");
}

#[test]
fn learning_rates_read_as_people_write_them() {
    let msg = |lr: f32| Error::NonFiniteLoss { step: 3, value: f32::INFINITY, suggested_lr: lr }.to_string();
    assert!(msg(1e35).ends_with("(e.g. 1e35)"), "{}", msg(1e35));
    assert!(msg(1e-4).ends_with("(e.g. 1e-4)"));
    assert!(msg(0.05).ends_with("(e.g. 0.05)"));
    assert!(msg(2.5e-5).ends_with("(e.g. 2.5e-5)"));
}

// ---------------------------------------------------------------------------
// 7. Means over nothing are refused.

#[test]
fn averages_over_nothing_are_refused() {
    let (code, out, err) = cli(&["train", "--model", "mlp", "--limit-train", "64", "--limit-test", "0"]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(err.contains("--limit-test 0 leaves no test example"), "{err}");
    let (code, _, err) = cli(&["train", "--model", "mlp", "--limit-train", "0"]);
    assert_eq!(code, 1);
    assert!(err.contains("--limit-train 0"), "{err}");
    for flag in ["--steps", "--runs", "--limit-test"] {
        let (code, _, err) = cli(&["bench", "--model", "mlp", flag, "0"]);
        assert_eq!(code, 1, "{flag}");
        assert!(err.contains(&format!("{flag} 0 leaves nothing to measure")), "{err}");
    }
    // A trainer refuses an empty test set (so no evaluation is over nothing).
    let (train, _) = common::mnist(64, 1);
    let empty = Mnist { images: vec![], labels: vec![] };
    let e = Trainer::new(&layerlab::preset("mlp").unwrap(), train, Data::from(empty)).err().unwrap().to_string();
    assert!(e.contains("the test set is empty"), "{e}");
    // A run that has nothing left to train says so instead of reporting a mean of no losses.
    let dir = common::unique_dir("resume-done");
    let ckpt = dir.join("run.safetensors");
    let (code, _, err) = cli(&[
        "train",
        "--model",
        "mlp",
        "--limit-train",
        "128",
        "--limit-test",
        "10",
        "--checkpoint",
        ckpt.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = cli(&[
        "train",
        "--model",
        "mlp",
        "--limit-train",
        "128",
        "--limit-test",
        "10",
        "--resume",
        ckpt.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("the run has taken all 2 steps of its 1 epochs already"), "{err}");
}

/// Counts read from a checkpoint file are bounded before any arithmetic: a
/// step counter near the largest integer, a position at the end of the data or
/// an optimizer count past the steps is a damaged file, not a wrapped run.
#[test]
fn checkpoint_counts_are_checked() {
    let (train, test) = common::mnist(256, 10);
    let spec = layerlab::preset("mlp").unwrap();
    let mut trainer = Trainer::new(&spec, train, test).unwrap();
    trainer.step().unwrap();
    let host = pollster::block_on(trainer.checkpoint().to_host()).unwrap();
    let bytes = trainer.checkpoint_to_bytes(&host).unwrap();
    let meta = layerlab::io::weights::read_metadata(&bytes).unwrap();
    let tensors: Vec<(String, layerlab::tensor::Array)> =
        layerlab::io::weights::read_all(&bytes).unwrap().into_iter().collect();
    assert!(trainer.checkpoint_from_bytes(&bytes).is_ok());
    for (key, value, message) in [
        ("step", usize::MAX.to_string(), "do not fit a run of 4 steps per epoch"),
        ("epoch", "6148914691236517206".to_string(), "do not fit a run"),
        ("cursor", "256".to_string(), "is past the training set"),
        ("optimizer_t", u64::MAX.to_string(), "has counted 18446744073709551615 updates in 1 steps"),
        ("samples_seen", usize::MAX.to_string(), "examples seen in 1 steps"),
    ] {
        let mut meta = meta.clone();
        meta.insert(key.to_string(), value);
        let damaged = layerlab::io::weights::to_bytes_with(&tensors, Some(meta)).unwrap();
        let e = trainer.checkpoint_from_bytes(&damaged).err().unwrap().to_string();
        assert!(e.contains(message) && e.contains("damaged"), "{key}: {e}");
    }
}
