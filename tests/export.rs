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
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("export-{format}")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let files = if format == "keras" { layerlab::io::keras::keras(&model) } else { export::pytorch(&model) };
    for (file, bytes) in files.unwrap() {
        std::fs::write(dir.join(file), bytes).unwrap();
    }
    dir
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
            let why = format!("{python} cannot import {modules}: {}", String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or(""));
            // When the test command set up a Python for these checks, it must work.
            assert!(std::env::var("LAYERLAB_PYTHON").is_err(), "{why}");
            Err(why)
        }
        Err(e) => Err(format!("{python} cannot run: {e}")),
    }
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
            assert_eq!(model_py.matches(",  # ").count(), spec.layers.len(), "{format} {name}: one line per layer, in order");
            assert!(dir.join("weights.safetensors").exists() && dir.join("check.safetensors").exists());
        }
    }
}

#[test]
fn exported_pytorch_models_give_layerlabs_logits_and_train() {
    let python = match python_with("torch, numpy, safetensors") {
        Ok(p) => p,
        Err(why) => {
            eprintln!("SKIPPED: the PyTorch round trip needs torch ({why}); `bash scripts/test.sh` installs it");
            return;
        }
    };
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
                    let out = run(torchrun.to_str().unwrap(), &dir, &["--nproc_per_node=2", "train.py", "--steps", "2"]);
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
    let python = match python_with("keras, torch, numpy, safetensors") {
        Ok(p) => p,
        Err(why) => {
            eprintln!("SKIPPED: the Keras round trip needs keras and torch ({why}); `bash scripts/test.sh` installs them");
            return;
        }
    };
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
