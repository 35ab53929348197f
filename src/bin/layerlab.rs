//! The native command line: `train`, `bench`, `step`, `info` and `export` over a
//! model spec.
//! Progress goes to stderr; the result is one JSON line on stdout.

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    std::process::exit(cli::run());
}

#[cfg(not(target_arch = "wasm32"))]
mod cli {
    use std::path::{Path, PathBuf};
    use std::time::Instant;

    use clap::{Parser, Subcommand};
    use indicatif::{ProgressBar, ProgressStyle};
    use layerlab::autograd::no_grad;
    use layerlab::backend::{Device, Gpu};
    use layerlab::data::{mnist, Data, Mnist};
    use layerlab::io::weights;
    use layerlab::nn::{Mode, Model};
    use layerlab::train::{argmax, Trainer};
    use layerlab::{Error, ModelSpec, Result, Tensor};
    use serde_json::json;

    #[derive(Parser)]
    #[command(name = "layerlab", version, about = "Train, benchmark and inspect layerlab models natively.")]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    #[derive(clap::Args)]
    struct ModelArgs {
        /// A model spec (JSON file), or the name of a preset such as `seed-cnn` or `mlp`.
        #[arg(long)]
        model: String,
        /// Folder with the four MNIST IDX .gz files (default: assets/mnist).
        #[arg(long)]
        data: Option<PathBuf>,
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
    enum Backend {
        /// The CPU engine (ndarray, SIMD GEMM).
        Cpu,
        /// The GPU through wgpu (Vulkan, Metal or DX12; lavapipe where there is no GPU).
        Gpu,
        /// The faster of the two for this model and batch size, measured: a few
        /// training steps on each (about a second) where a GPU adapter exists,
        /// else the CPU. As the page's Auto.
        Auto,
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
    enum TuningArg {
        Gpu,
        Software,
    }

    #[derive(clap::Args)]
    struct BackendArg {
        /// Where to compute: `cpu`, `gpu`, or `auto` (the faster, measured).
        #[arg(long, value_enum, default_value_t = Backend::Cpu)]
        backend: Backend,
    }

    impl BackendArg {
        /// The device; `auto` measures training `spec` on `train` on both
        /// (`step`, which trains nothing, passes `None` and gets the CPU).
        fn device(&self, measure_on: Option<(&ModelSpec, &Data)>) -> Result<Device> {
            match self.backend {
                Backend::Cpu => Ok(Device::Cpu),
                Backend::Gpu => {
                    let gpu = Gpu::new_blocking().map_err(|e| Error::Input(format!("--backend gpu: {e}. Install a Vulkan driver (on Debian: mesa-vulkan-drivers), or use --backend cpu")))?;
                    eprintln!("backend: GPU {}", gpu.adapter);
                    gpu.warm_up();
                    Ok(Device::Gpu(gpu))
                }
                Backend::Auto => {
                    let gpu = match Gpu::new_blocking() {
                        Ok(gpu) => gpu,
                        Err(e) => {
                            eprintln!("backend: CPU (auto: no GPU here: {e})");
                            return Ok(Device::Cpu);
                        }
                    };
                    let Some((spec, train)) = measure_on else {
                        eprintln!("backend: CPU (auto: nothing to measure for one pass)");
                        return Ok(Device::Cpu);
                    };
                    gpu.warm_up();
                    let device = Device::Gpu(gpu.clone());
                    match pollster::block_on(layerlab::train::measure::measure(spec, train, &device, None)) {
                        Ok(speeds) => {
                            eprintln!("backend: {} (auto)", speeds.describe(&format!("GPU {}", gpu.adapter)));
                            Ok(if speeds.gpu_wins() { device } else { Device::Cpu })
                        }
                        Err(Error::Gpu(e)) => {
                            eprintln!("backend: CPU (auto: the GPU failed while measuring: {e})");
                            Ok(Device::Cpu)
                        }
                        Err(e) => {
                            eprintln!("backend: CPU (auto: could not measure: {e})");
                            Ok(Device::Cpu)
                        }
                    }
                }
            }
        }
    }

    #[derive(Subcommand)]
    enum Command {
        /// Train a model on its data set and report test accuracy.
        Train {
            #[command(flatten)]
            model: ModelArgs,
            #[command(flatten)]
            backend: BackendArg,
            /// Number of epochs (default: the spec's).
            #[arg(long)]
            epochs: Option<usize>,
            /// Seed for initialisation, data order and dropout (default: the spec's).
            #[arg(long)]
            seed: Option<u64>,
            /// Train on the first N training examples only.
            #[arg(long)]
            limit_train: Option<usize>,
            /// Evaluate on the first N test examples only.
            #[arg(long)]
            limit_test: Option<usize>,
            /// Start from these weights (safetensors) instead of a fresh initialisation.
            #[arg(long)]
            weights: Option<PathBuf>,
            /// Write the trained weights here (safetensors, PyTorch state-dict names).
            #[arg(long)]
            save: Option<PathBuf>,
            /// Write the run here at the end (weights, optimizer state, data
            /// position; safetensors), to go on with it later with --resume.
            #[arg(long)]
            checkpoint: Option<PathBuf>,
            /// Go on with a run from its --checkpoint file: the steps still left to
            /// the epochs, exactly as the run would have taken them.
            #[arg(long, conflicts_with = "weights")]
            resume: Option<PathBuf>,
            /// CPU threads to train with, data-parallel: each computes the
            /// gradients of chunks of every batch, taking them as it goes (1 to
            /// 64; the GPU ignores it).
            #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
            threads: u16,
        },
        /// Measure training and inference throughput (method of BENCHMARKS.md).
        Bench {
            #[command(flatten)]
            model: ModelArgs,
            #[command(flatten)]
            backend: BackendArg,
            /// Steps per timed window.
            #[arg(long, default_value_t = 300)]
            steps: usize,
            /// Warm-up steps before the first window.
            #[arg(long, default_value_t = 20)]
            warmup: usize,
            /// Timed windows; the median is reported.
            #[arg(long, default_value_t = 3)]
            runs: usize,
            /// Time inference on the first N test examples only (for slow devices).
            #[arg(long)]
            limit_test: Option<usize>,
            /// Instead of timing windows, profile `--steps` training steps on the
            /// GPU: per kernel, dispatches, workgroups, invocations, the longest
            /// serial loop of one invocation, MB read and written, and GPU time
            /// where the device has timestamp queries (a table on stderr, the
            /// figures in the JSON).
            #[arg(long)]
            profile: bool,
            /// Examples per step (default: the spec's).
            #[arg(long)]
            batch_size: Option<usize>,
            /// The GPU kernels' shapes: `gpu` (for a real GPU) or `software`
            /// (for lavapipe and SwiftShader); default: by the adapter's type.
            /// `--profile --tuning gpu` on lavapipe shows the kernels a real GPU runs.
            #[arg(long, value_enum)]
            tuning: Option<TuningArg>,
            /// CPU threads to train with, data-parallel: each computes the
            /// gradients of chunks of every batch, taking them as it goes (1 to
            /// 64; the GPU ignores it).
            #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
            threads: u16,
        },
        /// One forward and backward pass on a given batch; writes every gradient.
        Step {
            #[command(flatten)]
            model: ModelArgs,
            #[command(flatten)]
            backend: BackendArg,
            /// Weights to start from (safetensors).
            #[arg(long)]
            weights: PathBuf,
            /// The batch: `x` (f32, [batch, ..input shape]) and `y` (i64 labels, [batch]).
            #[arg(long)]
            batch: PathBuf,
            /// Where to write the gradients, under the parameters' names.
            #[arg(long)]
            grads: PathBuf,
        },
        /// Print the inferred shapes and parameter counts, or the error.
        Info {
            #[command(flatten)]
            model: ModelArgs,
        },
        /// Write the model as code for another framework, with its weights.
        Export {
            #[command(flatten)]
            model: ModelArgs,
            /// Weights to export (safetensors; default: the spec's initial weights from its seed).
            #[arg(long)]
            weights: Option<PathBuf>,
            /// The framework: `pytorch` or `keras` (Keras 3).
            #[arg(long, default_value = "pytorch")]
            format: String,
            /// The folder to write (created if missing).
            #[arg(long)]
            out: PathBuf,
        },
    }

    pub fn run() -> i32 {
        let cli = Cli::parse();
        let result = match cli.command {
            Command::Train {
                model,
                backend,
                epochs,
                seed,
                limit_train,
                limit_test,
                weights,
                save,
                checkpoint,
                resume,
                threads,
            } => train(
                &model,
                &backend,
                TrainOptions { epochs, seed, limit_train, limit_test, weights, save, checkpoint, resume, threads },
            ),
            Command::Bench {
                model,
                backend,
                steps,
                warmup,
                runs,
                limit_test,
                profile,
                batch_size,
                tuning,
                threads,
            } => {
                let opts = BenchOptions { steps, warmup, runs, limit_test, batch_size, tuning, threads };
                if profile {
                    backend.device(None).and_then(|d| profile_steps(&model, &d, &opts))
                } else {
                    bench(&model, &backend, opts)
                }
            }
            Command::Step { model, backend, weights, batch, grads } => {
                backend.device(None).and_then(|d| step(&model, &d, &weights, &batch, &grads))
            }
            Command::Info { model } => info(&model),
            Command::Export { model, weights, format, out } => export(&model, weights.as_deref(), &format, &out),
        };
        match result {
            Ok(line) => {
                println!("{line}");
                0
            }
            Err(e) => {
                eprintln!("error: {e}");
                1
            }
        }
    }

    fn read(path: &Path) -> Result<Vec<u8>> {
        std::fs::read(path).map_err(|e| Error::io(path.display().to_string(), e))
    }

    fn load_spec(args: &ModelArgs) -> Result<ModelSpec> {
        let path = Path::new(&args.model);
        if !path.exists() {
            if let Some(spec) = layerlab::preset(&args.model) {
                return Ok(spec);
            }
        }
        let text = String::from_utf8(read(path)?)
            .map_err(|_| Error::Input(format!("{}: the model file is not UTF-8 text", path.display())))?;
        ModelSpec::from_json(&text)
    }

    fn data_dir(args: &ModelArgs) -> PathBuf {
        if let Some(d) = &args.data {
            return d.clone();
        }
        let local = PathBuf::from("assets/mnist");
        if local.join(mnist::TRAIN_IMAGES).exists() {
            return local;
        }
        Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/mnist")
    }

    /// The spec's data: MNIST from files, or its generated sequence task.
    fn load_data(args: &ModelArgs, spec: &ModelSpec) -> Result<(Data, Data)> {
        if let Some(sets) = Data::generated(&spec.input, spec.training.seed) {
            return Ok(sets);
        }
        let dir = data_dir(args);
        Ok((Mnist::load_dir(&dir, true)?.into(), Mnist::load_dir(&dir, false)?.into()))
    }

    /// Keeps the first `n` examples.
    fn truncate(data: &mut Data, n: usize) {
        match data {
            Data::Mnist(m) => std::sync::Arc::make_mut(m).truncate(n),
            Data::Tokens(t) => t.len = t.len.min(n),
        }
    }

    fn progress(len: u64) -> ProgressBar {
        let bar = ProgressBar::new(len);
        bar.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} steps  {msg}")
                .unwrap()
                .progress_chars("=> "),
        );
        bar
    }

    struct TrainOptions {
        epochs: Option<usize>,
        seed: Option<u64>,
        limit_train: Option<usize>,
        limit_test: Option<usize>,
        weights: Option<PathBuf>,
        save: Option<PathBuf>,
        checkpoint: Option<PathBuf>,
        resume: Option<PathBuf>,
        threads: u16,
    }

    /// Puts the file's name in front of a checkpoint error.
    fn in_file(path: &std::path::Path) -> impl Fn(Error) -> Error + '_ {
        move |e| match e {
            Error::Checkpoint(m) => Error::Checkpoint(format!("{}: {m}", path.display())),
            e => e,
        }
    }

    fn train(args: &ModelArgs, backend: &BackendArg, opts: TrainOptions) -> Result<String> {
        let mut spec = load_spec(args)?;
        if let Some(e) = opts.epochs {
            spec.training.epochs = e;
        }
        if let Some(s) = opts.seed {
            spec.training.seed = s;
        }
        if opts.limit_test == Some(0) {
            return Err(Error::Input("--limit-test 0 leaves no test example to measure accuracy on; give at least 1 (or leave it out for all 10,000)".into()));
        }
        if opts.limit_train == Some(0) {
            return Err(Error::Input(
                "--limit-train 0 leaves no training example; give at least 1 (or leave it out)".into(),
            ));
        }
        let (mut train_set, test_set) = load_data(args, &spec)?;
        if let Some(n) = opts.limit_train {
            truncate(&mut train_set, n);
        }
        let device = &backend.device(Some((&spec, &train_set)))?;
        let mut trainer = Trainer::with_device(&spec, train_set, test_set, device)?;
        trainer.set_threads(opts.threads.into());
        if let Some(path) = &opts.weights {
            weights::load_parameters(trainer.parameters(), &read(path)?)
                .map_err(|e| Error::Weights(format!("{}: {e}", path.display())))?;
        }
        if let Some(path) = &opts.resume {
            let host = trainer.checkpoint_from_bytes(&read(path)?).map_err(in_file(path))?;
            trainer.restore(&host, device);
        }
        // Epochs are at most MAX_EPOCHS (the spec checked them), so this cannot
        // wrap; checked all the same, as every count a user gives.
        let all_steps = trainer.steps_per_epoch().checked_mul(spec.training.epochs).ok_or_else(|| {
            Error::Input(format!(
                "{} epochs of {} steps are more steps than can be counted; ask for fewer epochs",
                spec.training.epochs,
                trainer.steps_per_epoch()
            ))
        })?;
        let total_steps = all_steps.saturating_sub(trainer.steps_done());
        if total_steps == 0 {
            return Err(Error::Input(format!(
                "the run has taken all {all_steps} steps of its {} epochs already; ask for more with --epochs",
                spec.training.epochs
            )));
        }
        let bar = progress(total_steps as u64);
        let samples_before = trainer.samples_seen();
        let started = Instant::now();
        // The last 100 losses, summed in f64: f32 overflows on losses near 1e37.
        let mut recent = std::collections::VecDeque::new();
        // The next step is recorded while the GPU runs the last one.
        trainer.run_pipelined(total_steps, |m| {
            recent.push_back(m.loss as f64);
            if recent.len() > 100 {
                recent.pop_front();
            }
            bar.inc(1);
            if m.step % 20 == 0 {
                bar.set_message(format!("epoch {} loss {:.4} acc {:.3}", m.epoch + 1, m.loss, m.accuracy));
            }
        })?;
        let train_seconds = started.elapsed().as_secs_f64();
        bar.finish_and_clear();
        let eval = trainer.evaluate(opts.limit_test);
        if let Some(path) = &opts.save {
            let bytes = weights::save_parameters(trainer.parameters())?;
            std::fs::write(path, bytes).map_err(|e| Error::io(path.display().to_string(), e))?;
        }
        if let Some(path) = &opts.checkpoint {
            let host = pollster::block_on(trainer.checkpoint().to_host()).map_err(|e| Error::Gpu(e.0))?;
            let bytes = trainer.checkpoint_to_bytes(&host).map_err(in_file(path))?;
            std::fs::write(path, bytes).map_err(|e| Error::io(path.display().to_string(), e))?;
        }
        let final_loss = recent.iter().sum::<f64>() / recent.len() as f64;
        finite_figures(
            &[
                ("the mean of the last losses", final_loss),
                ("the test loss", eval.loss as f64),
                ("the test accuracy", eval.accuracy as f64),
            ],
            trainer.optimizer.lr(),
        )?;
        Ok(json!({
            "model": spec.name,
            "backend": device.name(),
            "test_accuracy": eval.accuracy,
            "test_sequence_accuracy": eval.sequence_accuracy,
            "test_loss": eval.loss,
            "final_loss": final_loss,
            "train_samples_per_s": (trainer.samples_seen() - samples_before) as f64 / train_seconds,
            "seconds": started.elapsed().as_secs_f64(),
            "steps": trainer.steps_done(),
            "epochs": spec.training.epochs,
        })
        .to_string())
    }

    /// A result that claims success has only finite figures: a figure that
    /// overflowed is a divergence, with its message.
    fn finite_figures(figures: &[(&str, f64)], lr: f32) -> Result<()> {
        match figures.iter().find(|(_, v)| !v.is_finite()) {
            None => Ok(()),
            Some((what, v)) => Err(Error::Input(format!(
                "{what} is {v}: training diverged; try a smaller learning rate (e.g. {})",
                layerlab::error::format_lr(lr / 10.0)
            ))),
        }
    }

    fn median(mut v: Vec<f64>) -> f64 {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    }

    struct BenchOptions {
        steps: usize,
        warmup: usize,
        runs: usize,
        limit_test: Option<usize>,
        batch_size: Option<usize>,
        tuning: Option<TuningArg>,
        threads: u16,
    }

    /// `--tuning` on a GPU device (nothing on the CPU).
    fn set_tuning(device: &Device, tuning: Option<TuningArg>) {
        if let (Some(gpu), Some(t)) = (device.gpu(), tuning) {
            gpu.set_tuning(match t {
                TuningArg::Gpu => layerlab::backend::gpu::Tuning::Gpu,
                TuningArg::Software => layerlab::backend::gpu::Tuning::Software,
            });
        }
    }

    /// The spec, with `--batch-size` if given (checked as the spec's own).
    fn spec_with_batch(args: &ModelArgs, batch_size: Option<usize>) -> Result<ModelSpec> {
        let mut spec = load_spec(args)?;
        if let Some(b) = batch_size {
            spec.training.batch_size = b;
            spec.training.validate().map_err(|e| Error::Input(format!("--batch-size: {e}")))?;
        }
        Ok(spec)
    }

    fn bench(
        args: &ModelArgs,
        backend: &BackendArg,
        BenchOptions { steps, warmup, runs, limit_test, batch_size, tuning, threads }: BenchOptions,
    ) -> Result<String> {
        for (flag, value) in [("--steps", Some(steps)), ("--runs", Some(runs)), ("--limit-test", limit_test)] {
            if value == Some(0) {
                return Err(Error::Input(format!("{flag} 0 leaves nothing to measure; give at least 1")));
            }
        }
        let spec = spec_with_batch(args, batch_size)?;
        let (train_set, mut test_set) = load_data(args, &spec)?;
        if let Some(n) = limit_test {
            truncate(&mut test_set, n);
        }
        let batch_size = spec.training.batch_size;
        let device = &backend.device(Some((&spec, &train_set)))?;
        set_tuning(device, tuning);
        let mut trainer = Trainer::with_device(&spec, train_set, test_set.clone(), device)?;
        trainer.set_threads(threads.into());
        let bar = progress(steps.saturating_mul(runs).saturating_add(warmup) as u64);
        for _ in 0..warmup {
            trainer.step()?;
            bar.inc(1);
        }
        let mut windows = Vec::new();
        for _ in 0..runs {
            let t = Instant::now();
            let samples_before = trainer.samples_seen();
            trainer.run_pipelined(steps, |_| bar.inc(1))?;
            let samples = trainer.samples_seen() - samples_before;
            windows.push(samples as f64 / t.elapsed().as_secs_f64());
        }
        bar.finish_and_clear();
        let infer = |bs: usize| -> Vec<f64> {
            (0..4)
                .map(|_| {
                    let t = Instant::now();
                    infer_pass(&trainer.model, &test_set, bs);
                    test_set.len() as f64 / t.elapsed().as_secs_f64()
                })
                .skip(1)
                .collect()
        };
        let infer_1000 = infer(1000);
        let infer_64 = infer(64);
        Ok(json!({
            "model": spec.name,
            "backend": device.name(),
            "train_samples_per_s": median(windows.clone()),
            "train_windows": windows,
            "infer_samples_per_s": median(infer_1000),
            "infer_bs64_samples_per_s": median(infer_64),
            "steps_per_window": steps,
            "warmup_steps": warmup,
            "batch_size": batch_size,
            "threads": trainer.threads(),
        })
        .to_string())
    }

    /// `bench --profile`: where a GPU training step's time goes.
    fn profile_steps(args: &ModelArgs, device: &Device, opts: &BenchOptions) -> Result<String> {
        let &BenchOptions { steps, warmup, batch_size, .. } = opts;
        let Some(gpu) = device.gpu() else {
            return Err(Error::Input("--profile profiles the GPU's kernels; add --backend gpu".into()));
        };
        set_tuning(device, opts.tuning);
        if steps == 0 {
            return Err(Error::Input("--steps 0 leaves nothing to profile; give at least 1".into()));
        }
        let spec = spec_with_batch(args, batch_size)?;
        let (train_set, test_set) = load_data(args, &spec)?;
        let mut trainer = Trainer::with_device(&spec, train_set, test_set, device)?;
        for _ in 0..warmup.max(1) {
            trainer.step()?;
        }
        gpu.start_profile();
        let t = Instant::now();
        for _ in 0..steps {
            trainer.step()?;
        }
        let seconds = t.elapsed().as_secs_f64();
        let kernels = gpu.take_profile();
        eprintln!(
            "{} on {} ({:?} tuning), batch {}, {steps} steps: per step\n{}",
            spec.name,
            gpu.adapter,
            gpu.tuning(),
            spec.training.batch_size,
            layerlab::backend::gpu::profile::table(&kernels, steps)
        );
        let per = |v: u64| v as f64 / steps as f64;
        let rows: Vec<_> = kernels
            .iter()
            .map(|k| {
                json!({
                    "kernel": k.kernel,
                    "dispatches_per_step": per(k.dispatches),
                    "workgroups_per_step": per(k.workgroups),
                    "invocations_per_step": per(k.invocations),
                    "longest_serial_loop": k.serial,
                    "bytes_read_per_step": per(k.read_bytes),
                    "bytes_written_per_step": per(k.written_bytes),
                    "gpu_ms_per_step": k.seconds.map(|s| s * 1e3 / steps as f64),
                })
            })
            .collect();
        Ok(json!({
            "model": spec.name,
            "backend": device.name(),
            "batch_size": spec.training.batch_size,
            "tuning": format!("{:?}", gpu.tuning()).to_lowercase(),
            "steps": steps,
            "timed": kernels.iter().any(|k| k.seconds.is_some()),
            "wall_ms_per_step": seconds * 1e3 / steps as f64,
            "kernels": rows,
        })
        .to_string())
    }

    /// Forward + argmax over a whole split, as the inference benchmark measures it.
    fn infer_pass(model: &Model, data: &Data, batch: usize) -> usize {
        let classes = *model.info.output_shape.last().unwrap();
        let mut correct = 0;
        no_grad(|| {
            for start in (0..data.len()).step_by(batch) {
                let idx: Vec<u32> = (start as u32..(start + batch).min(data.len()) as u32).collect();
                let b = data.batch(&idx, &model.info.input_shape);
                let logits = model.forward_logits(&Tensor::from_vec(&b.shape, b.x), Mode::Eval);
                let lv = logits.to_array();
                let lv = lv.as_standard_layout();
                correct +=
                    lv.as_slice().unwrap().chunks(classes).zip(&b.labels).filter(|(r, &y)| argmax(r) == y).count();
            }
        });
        correct
    }

    fn step(
        args: &ModelArgs,
        device: &Device,
        weights_path: &Path,
        batch_path: &Path,
        grads_path: &Path,
    ) -> Result<String> {
        let spec = load_spec(args)?;
        let model = Model::new(&spec)?;
        for t in model.tensors() {
            t.upload_to(device);
        }
        let params = model.parameters();
        weights::load_parameters(&params, &read(weights_path)?)
            .map_err(|e| Error::Weights(format!("{}: {e}", weights_path.display())))?;
        let batch_bytes = read(batch_path)?;
        let tensors =
            weights::read_all(&batch_bytes).map_err(|e| Error::Input(format!("{}: {e}", batch_path.display())))?;
        let x = tensors
            .get("x")
            .ok_or_else(|| Error::Input(format!("{}: the batch has no tensor \"x\"", batch_path.display())))?;
        let (y_shape, y) =
            weights::read_i64(&batch_bytes, "y").map_err(|e| Error::Input(format!("{}: {e}", batch_path.display())))?;
        let input = &model.info.input_shape;
        if x.shape().first() == Some(&0) {
            return Err(Error::Input(format!(
                "{}: \"x\" holds no example (shape {:?}); the loss is a mean over the batch, so give at least one",
                batch_path.display(),
                x.shape()
            )));
        }
        if x.ndim() != input.len() + 1 || &x.shape()[1..] != input.as_slice() {
            return Err(Error::Input(format!(
                "{}: \"x\" has shape {:?} but the model takes [batch, {}]",
                batch_path.display(),
                x.shape(),
                input.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")
            )));
        }
        let classes = spec.input.classes() as i64;
        let want_y: Vec<usize> = if spec.input.is_tokens() { vec![x.shape()[0], input[0]] } else { vec![x.shape()[0]] };
        if y_shape != want_y {
            return Err(Error::Input(format!(
                "{}: \"y\" has shape {y_shape:?} but must be {want_y:?}, one label per example{}",
                batch_path.display(),
                if spec.input.is_tokens() { " and position" } else { "" }
            )));
        }
        if spec.input.is_tokens() {
            if let Some(bad) = x.iter().find(|&&t| t < 0.0 || t >= classes as f32 || t.fract() != 0.0) {
                return Err(Error::Input(format!(
                    "{}: token {bad} in \"x\" is not an id in 0..{}",
                    batch_path.display(),
                    classes - 1
                )));
            }
        }
        if let Some(bad) = y.iter().find(|&&l| l < 0 || l >= classes) {
            return Err(Error::Input(format!(
                "{}: label {bad} in \"y\" is outside 0..{}",
                batch_path.display(),
                classes - 1
            )));
        }
        let labels: Vec<usize> = y.iter().map(|&l| l as usize).collect();
        // Dropout off (as PyTorch's model.eval()) so the pass is deterministic.
        let logits = model.forward_logits(&Tensor::new(x.clone()), Mode::Eval);
        let loss = logits.softmax_cross_entropy(&labels);
        loss.backward();
        let grads: Vec<(String, layerlab::tensor::Array)> = params
            .iter()
            .map(|(n, p)| {
                (
                    n.clone(),
                    p.grad_array()
                        .map(|g| g.as_standard_layout().into_owned())
                        .unwrap_or_else(|| ndarray::ArrayD::zeros(p.shape())),
                )
            })
            .collect();
        std::fs::write(grads_path, weights::to_bytes(&grads)?)
            .map_err(|e| Error::io(grads_path.display().to_string(), e))?;
        Ok(json!({"loss": loss.item()}).to_string())
    }

    fn info(args: &ModelArgs) -> Result<String> {
        let spec = load_spec(args)?;
        let info = spec.infer()?;
        for l in &info.layers {
            eprintln!(
                "{:>3} {:<14} {:>16} -> {:<16} {:>9} params",
                l.index,
                l.layer_type,
                format!("{:?}", l.input_shape),
                format!("{:?}", l.output_shape),
                l.param_count
            );
        }
        eprintln!("total: {} parameters", info.total_params);
        Ok(serde_json::to_string(&info).unwrap())
    }

    fn export(args: &ModelArgs, weights_path: Option<&Path>, format: &str, out: &Path) -> Result<String> {
        let spec = load_spec(args)?;
        let model = Model::new(&spec)?;
        if let Some(path) = weights_path {
            weights::load_parameters(&model.parameters(), &read(path)?)
                .map_err(|e| Error::Weights(format!("{}: {e}", path.display())))?;
        }
        let files = match format {
            "pytorch" | "torch" => layerlab::io::export::pytorch(&model)?,
            "keras" => layerlab::io::keras::keras(&model)?,
            other => return Err(Error::Input(format!("unknown export format \"{other}\"; use pytorch or keras"))),
        };
        std::fs::create_dir_all(out).map_err(|e| Error::io(out.display().to_string(), e))?;
        for (name, bytes) in &files {
            let path = out.join(name);
            std::fs::write(&path, bytes).map_err(|e| Error::io(path.display().to_string(), e))?;
        }
        // MNIST beside train.py, so that `python train.py` runs as it is.
        let mut names: Vec<String> = files.iter().map(|f| f.0.clone()).collect();
        if !spec.input.is_tokens() {
            let from = data_dir(args);
            let to = out.join("mnist");
            std::fs::create_dir_all(&to).map_err(|e| Error::io(to.display().to_string(), e))?;
            for f in [mnist::TRAIN_IMAGES, mnist::TRAIN_LABELS, mnist::TEST_IMAGES, mnist::TEST_LABELS] {
                std::fs::copy(from.join(f), to.join(f))
                    .map_err(|e| Error::io(from.join(f).display().to_string(), e))?;
                names.push(format!("mnist/{f}"));
            }
        }
        eprintln!("wrote {} files to {}: {}", names.len(), out.display(), names.join(", "));
        Ok(json!({"format": format, "out": out.display().to_string(), "files": names}).to_string())
    }
}
