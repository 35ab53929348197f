//! Export to PyTorch and Keras 3: the generated code compiles (always), and,
//! where a Python with torch (and keras) is available, reproduces layerlab's
//! logits with the exported weights and trains a few steps (`check.py`,
//! `train.py`). `scripts/test.sh` installs them into a virtual environment and
//! names it in LAYERLAB_PYTHON; without it these checks say that they were
//! skipped and why.

use std::path::{Path, PathBuf};
use std::process::Command;

use layerlab::io::export;
use layerlab::{Model, ModelSpec};

mod common;
use common::models;

/// Writes an export of `spec` with every parameter set to random values (so that
/// a swapped bias or a transposed kernel cannot hide behind zeros and ones).
fn write_export(name: &str, spec: &ModelSpec, format: &str) -> PathBuf {
    let model = Model::new(spec).unwrap();
    let mut seed = 11u32;
    for (_, p) in model.parameters() {
        p.value_mut().mapv_inplace(|_| {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            ((seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * 0.6
        });
    }
    // A folder of its own: two tests exporting the same model never share one.
    common::export_to(&model, format, &format!("export-{name}")).0
}

fn run(python: &str, dir: &Path, args: &[&str]) -> String {
    let out = Command::new(python).args(args).current_dir(dir).env("OMP_NUM_THREADS", "1").output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{} {args:?} in {}:\n{text}", python, dir.display());
    text
}

/// A Python that can import `modules`, or why there is none.
fn python_with(modules: &str) -> Result<String, String> {
    let python = std::env::var("LAYERLAB_PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = Command::new(&python).args(["-c", &format!("import {modules}")]).env("KERAS_BACKEND", "torch").output();
    match probe {
        Ok(o) if o.status.success() => Ok(python),
        Ok(o) => {
            let why = format!(
                "{python} cannot import {modules}: {}",
                String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or("")
            );
            // When the test command set up a Python for these checks, it must work.
            assert!(std::env::var("LAYERLAB_PYTHON").is_err(), "{why}");
            Err(why)
        }
        Err(e) => Err(format!("{python} cannot run: {e}")),
    }
}

/// A Python that can import `modules`, or `None` after saying that `what`
/// was skipped and why.
fn python_or_skip(modules: &str, what: &str) -> Option<String> {
    python_with(modules)
        .map_err(|why| eprintln!("SKIPPED: {what} needs {modules} ({why}); `bash scripts/test.sh` installs them"))
        .ok()
}

/// The Python the exporters include (`src/io/export/py/`) is Python on its
/// own, placeholders included, so editors and linters read it as such.
#[test]
fn the_python_sources_compile_as_they_are() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/io/export/py");
    let mut files = Vec::new();
    for sub in ["", "pytorch", "keras"] {
        for entry in std::fs::read_dir(dir.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "py") {
                files.push(path);
            }
        }
    }
    assert!(files.len() >= 20, "{files:?}");
    // compile() checks the syntax without writing __pycache__ into the source tree.
    let check = "import sys\nfor f in sys.argv[1:]:\n    compile(open(f, encoding='utf-8').read(), f, 'exec')\n";
    let out = Command::new("python3").arg("-c").arg(check).args(&files).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn exported_code_compiles() {
    for format in ["pytorch", "keras"] {
        for (name, spec) in models() {
            let dir = write_export(&name, &spec, format);
            for file in ["model.py", "train.py", "check.py"] {
                run("python3", &dir, &["-m", "py_compile", file]);
            }
            let model_py = std::fs::read_to_string(dir.join("model.py")).unwrap();
            assert_eq!(
                model_py.matches(",  # ").count(),
                spec.layers.len(),
                "{format} {name}: one line per layer, in order"
            );
            assert!(dir.join("weights.safetensors").exists() && dir.join("check.safetensors").exists());
        }
    }
}

#[test]
fn exported_pytorch_models_give_layerlabs_logits_and_train() {
    let Some(python) = python_or_skip("torch, numpy, safetensors", "the PyTorch round trip") else { return };
    let mnist = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/mnist");
    for (name, spec) in models() {
        let dir = write_export(&name, &spec, "pytorch");
        let out = run(&python, &dir, &["check.py"]);
        assert!(out.contains("largest difference from layerlab's logits"), "{name}: {out}");
        eprintln!("{name}: {}", out.trim());
        if ["seed-cnn", "reverse-transformer", "rows-rnn-gru", "tokens-sinusoidal"].contains(&name.as_str()) {
            let out = run(&python, &dir, &["train.py", "--steps", "3", "--data", mnist.to_str().unwrap()]);
            assert!(out.contains("after 3 steps: test accuracy"), "{name}: {out}");
            if name == "reverse-transformer" {
                // Two processes under torchrun: DistributedDataParallel on the CPU (gloo).
                let torchrun = Path::new(&python).with_file_name("torchrun");
                if torchrun.exists() {
                    let out =
                        run(torchrun.to_str().unwrap(), &dir, &["--nproc_per_node=2", "train.py", "--steps", "2"]);
                    assert!(out.contains("after 2 steps: test accuracy"), "{name} under torchrun: {out}");
                }
            }
            // The weights PyTorch trained load back into layerlab.
            let model = Model::new(&spec).unwrap();
            let bytes = std::fs::read(dir.join("trained.safetensors")).unwrap();
            layerlab::io::weights::load_parameters(&model.parameters(), &bytes).unwrap();
        }
    }
}

#[test]
fn the_page_download_is_a_zip_of_the_export() {
    let model = Model::new(&layerlab::preset("mlp").unwrap()).unwrap();
    let files = export::pytorch(&model).unwrap();
    let bytes = export::zip("mlp-pytorch", &files).unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    assert_eq!(archive.len(), files.len());
    for (name, contents) in &files {
        let mut f = archive.by_name(&format!("mlp-pytorch/{name}")).unwrap();
        let mut read = Vec::new();
        std::io::Read::read_to_end(&mut f, &mut read).unwrap();
        assert_eq!(&read, contents, "{name}");
    }
    // Open reads it back: the files without their folder.
    let bytes = export::zip("mlp-pytorch", &files).unwrap();
    assert_eq!(export::unzip(&bytes, 1 << 30).unwrap(), files);
    assert!(export::unzip(&bytes, 1000).unwrap_err().to_string().contains("more than layerlab opens"));
    assert!(export::unzip(b"PK not really", 1000).unwrap_err().to_string().contains("not a zip archive"));
}

#[test]
fn exported_keras_models_give_layerlabs_logits_and_train() {
    let Some(python) = python_or_skip("keras, torch, numpy, safetensors", "the Keras round trip") else { return };
    let mnist = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/mnist");
    for (name, spec) in models() {
        let dir = write_export(&name, &spec, "keras");
        let out = run(&python, &dir, &["check.py"]);
        assert!(out.contains("largest difference from layerlab's logits"), "{name}: {out}");
        eprintln!("keras {name}: {}", out.lines().last().unwrap_or("").trim());
        if ["seed-lstm", "reverse-transformer"].contains(&name.as_str()) {
            let out = run(&python, &dir, &["train.py", "--steps", "2", "--data", mnist.to_str().unwrap()]);
            assert!(out.contains("test accuracy") && dir.join("trained.weights.h5").exists(), "{name}: {out}");
        }
    }
}

/// Keras's defaults that a user's ~/.keras/keras.json can change (image data
/// format, float type) are pinned in the export: with "channels_first" and
/// float64 configured, the export still gives layerlab's logits
/// (`keras-export-conv-flatten.json` failed by 7.7 when Flatten followed the config).
#[test]
fn keras_export_ignores_the_users_keras_config() {
    let Some(python) = python_or_skip("keras, torch, numpy, safetensors", "the Keras check") else { return };
    let regression = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/regressions/keras-export-conv-flatten.json");
    let mut specs = vec![(
        "conv-flatten".to_string(),
        ModelSpec::from_json(&std::fs::read_to_string(regression).unwrap()).unwrap(),
    )];
    specs.extend(
        models()
            .into_iter()
            .filter(|(n, _)| ["seed-cnn", "tiny-vit", "seed-lstm", "tokens-sinusoidal"].contains(&n.as_str())),
    );
    let keras_home = common::unique_dir("keras-home");
    std::fs::write(
        keras_home.join("keras.json"),
        r#"{"floatx": "float64", "epsilon": 0.1, "backend": "torch", "image_data_format": "channels_first"}"#,
    )
    .unwrap();
    for (name, spec) in specs {
        let dir = write_export(&name, &spec, "keras");
        let out = Command::new(&python)
            .arg("check.py")
            .current_dir(&dir)
            .env("KERAS_HOME", &keras_home)
            .env("OMP_NUM_THREADS", "1")
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{name} with a channels_first keras.json: {text}");
        eprintln!("keras {name} (channels_first, float64 config): {}", text.lines().last().unwrap_or("").trim());
    }
}

/// Two steps of the exported `train.py` from the exported weights, on the
/// same batches as layerlab, give layerlab's weights within 1e-6: Adam with
/// non-default betas and a large epsilon (where torch.optim.Adam's placement of
/// epsilon differs ~29x) and SGD with momentum, in both exports.
#[test]
fn exported_training_makes_layerlabs_update() {
    let Some(python) = python_or_skip("keras, torch, numpy, safetensors", "the optimizer check") else { return };
    let mnist = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/mnist");
    for optimizer in [
        r#"{"type": "Adam", "lr": 0.01, "beta_1": 0.8, "beta_2": 0.95, "epsilon": 1.0}"#,
        r#"{"type": "Adam", "lr": 0.0005, "beta_1": 0.5, "beta_2": 0.9, "epsilon": 1e-7}"#,
        r#"{"type": "SGD", "lr": 0.05, "momentum": 0.9}"#,
    ] {
        let spec = ModelSpec::from_json(&format!(
            r#"{{"name": "step", "input": {{"dataset": "mnist", "shape": [784]}}, "layers": [{{"type": "Dense", "units": 16, "activation": "tanh"}}, {{"type": "Dense", "units": 10}}], "training": {{"optimizer": {optimizer}, "batch_size": 32, "seed": 3}}}}"#
        ))
        .unwrap();
        // layerlab: two steps from the spec's initial weights, on the first two batches.
        let (train, test) = (
            layerlab::data::Mnist::load_dir(&mnist, true).unwrap(),
            layerlab::data::Mnist::load_dir(&mnist, false).unwrap(),
        );
        let mut trainer = layerlab::Trainer::new(&spec, train, test).unwrap();
        let start = layerlab::io::weights::save_parameters(trainer.parameters()).unwrap();
        trainer.step().unwrap();
        trainer.step().unwrap();
        let stepped = layerlab::io::weights::save_parameters(trainer.parameters()).unwrap();
        let moved = largest_difference(&start, &stepped);
        for format in ["pytorch", "keras"] {
            let (dir, _) = common::export_to(&Model::new(&spec).unwrap(), format, "optimizer");
            assert_eq!(
                std::fs::read(dir.join("weights.safetensors")).unwrap(),
                start,
                "the export starts from the same weights"
            );
            std::fs::write(dir.join("layerlab.safetensors"), &stepped).unwrap();
            run(&python, &dir, &["train.py", "--epochs", "1", "--steps", "2", "--data", mnist.to_str().unwrap()]);
            let diff = if format == "pytorch" {
                largest_difference(&stepped, &std::fs::read(dir.join("trained.safetensors")).unwrap())
            } else {
                let compare = "import os\nos.environ.setdefault('KERAS_BACKEND', 'torch')\nimport numpy as np\nfrom model import build_model, load_layerlab_weights\n\
                               a = build_model()\na.load_weights('trained.weights.h5')\nb = build_model()\nload_layerlab_weights(b, 'layerlab.safetensors')\n\
                               print(max(float(np.abs(x - y).max()) for x, y in zip(a.get_weights(), b.get_weights())))\n";
                run(&python, &dir, &["-c", compare]).trim().lines().last().unwrap().parse::<f32>().unwrap()
            };
            eprintln!("{format} {optimizer}: weights moved up to {moved:.2e}; exported training differs from layerlab's by {diff:.2e}");
            assert!(diff <= 1e-6, "{format} {optimizer}: the exported train.py's weights differ from layerlab's by {diff} (the steps moved them by {moved})");
        }
    }
}

/// The largest difference between two safetensors files' same-named tensors.
fn largest_difference(a: &[u8], b: &[u8]) -> f32 {
    let (a, b) = (layerlab::io::weights::read_all(a).unwrap(), layerlab::io::weights::read_all(b).unwrap());
    assert_eq!(a.len(), b.len());
    a.iter().map(|(name, x)| (x - &b[name]).iter().fold(0f32, |m, v| m.max(v.abs()))).fold(0f32, f32::max)
}

/// Open reads every valid form of a zip: deflated entries (the user's own zip
/// tool), data descriptors (streamed writers), folder entries, `\` in names.
#[test]
fn open_reads_zips_made_by_other_tools() {
    use std::io::Write;
    let model = Model::new(&layerlab::preset("mlp").unwrap()).unwrap();
    let files = export::pytorch(&model).unwrap();
    let deflated = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    // Streamed: sizes and CRCs in data descriptors after each entry.
    let mut w = zip::ZipWriter::new_stream(Vec::new());
    w.add_directory("mlp/", deflated).unwrap();
    w.add_directory("mlp/sub/", deflated).unwrap();
    for (i, (name, bytes)) in files.iter().enumerate() {
        let entry = if i % 2 == 0 { format!("mlp/{name}") } else { format!("mlp\\sub\\{name}") };
        w.start_file(entry, deflated).unwrap();
        w.write_all(bytes).unwrap();
    }
    // What macOS's Finder adds: resource forks beside and under __MACOSX/.
    for junk in ["__MACOSX/mlp/._model.json", "mlp/._weights.safetensors", "__MACOSX/._mlp"] {
        w.start_file(junk, deflated).unwrap();
        w.write_all(b"\x00\x05\x16\x07 resource fork").unwrap();
    }
    let bytes = w.finish().unwrap().into_inner();
    assert_eq!(export::unzip(&bytes, 1 << 30).unwrap(), files);
    // A cap on what is read in all.
    let e = export::unzip(&bytes, 1000).unwrap_err().to_string();
    assert!(e.contains("more than layerlab opens"), "{e}");
}
