//! Data-parallel training on the CPU across threads (`Trainer::set_threads`,
//! the CLI's `--threads N`), as PyTorch's `DistributedDataParallel` does it
//! across processes: each thread holds a replica of the model, computes the
//! gradient of its contiguous part of the batch, and the gradients are summed
//! (weighted by the part's share of the batch, since each part's loss is a
//! mean) into the main model's, which the optimizer then updates as for one
//! thread. The replicas take the main model's weights at the start of every
//! step, so they never drift, and a restored checkpoint or an undone
//! diverging step needs nothing more.
//!
//! The result equals one thread's up to the order of floating-point sums.
//! Layers with per-batch state would see their part of the batch only
//! (BatchNormalization, when it comes, needs its statistics summed too, as
//! PyTorch's `SyncBatchNorm`). Each helper's dropout masks come from a seed
//! the trainer's generator draws for it every step (the main thread's part
//! uses that generator itself), so a model with dropout trains differently,
//! though as validly, with N threads, and a checkpoint or an undone step
//! still repeats exactly.
//!
//! The browser's workers will run the same replica step (`replica_step`) on
//! messages instead of channels.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::nn::{Model, ModelSpec};
use crate::tensor::Tensor;

/// One part of a batch for a replica, with the weights to use and the seed
/// of its dropout masks (drawn from the trainer's generator, so that
/// checkpoints and undone steps cover every part's masks).
struct Job {
    weights: Arc<Vec<Vec<f32>>>,
    x: Vec<f32>,
    shape: Vec<usize>,
    labels: Vec<usize>,
    seed: u64,
}

/// What a replica sends back: its part's gradients (each parameter's,
/// row-major; `None` where the loss does not reach it, which the optimizer
/// then leaves alone), mean loss and correct predictions.
pub(crate) struct PartResult {
    pub grads: Vec<Option<Vec<f32>>>,
    pub loss: f32,
    pub correct: u32,
}

struct Replica {
    jobs: Sender<Job>,
    results: Receiver<Result<PartResult, String>>,
    thread: Option<JoinHandle<()>>,
}

/// The helper threads of a data-parallel trainer (the main thread is the
/// first worker).
pub(crate) struct Pool {
    replicas: Vec<Replica>,
}

/// The forward and backward pass of one part on `model`: its loss, correct
/// predictions and the parameters' gradients.
pub(crate) fn replica_step(model: &Model, x: &Tensor, labels: &[usize], rng: &mut ChaCha8Rng) -> PartResult {
    let params = model.parameters();
    let (logits, loss) = super::forward_backward(model, &params, x, labels, rng);
    let correct = crate::backend::cpu::count_correct(&logits.value(), labels);
    let grads = params
        .iter()
        .map(|(_, p)| p.grad().map(|g| crate::backend::cpu::array::standard(&g).iter().copied().collect()))
        .collect();
    PartResult { grads, loss: loss.item(), correct }
}

impl Pool {
    /// `helpers` threads, each with a replica of `spec`'s model.
    pub(crate) fn new(spec: &ModelSpec, helpers: usize) -> Pool {
        let replicas = (0..helpers)
            .map(|k| {
                let (jobs, job_rx) = channel::<Job>();
                let (result_tx, results) = channel();
                let spec = spec.clone();
                let thread = std::thread::Builder::new()
                    .name(format!("layerlab-replica-{}", k + 1))
                    .spawn(move || {
                        let model = match Model::new(&spec) {
                            Ok(m) => m,
                            Err(e) => {
                                let _ = result_tx.send(Err(e.to_string()));
                                return;
                            }
                        };
                        let params = model.parameters();
                        while let Ok(job) = job_rx.recv() {
                            for ((_, p), w) in params.iter().zip(job.weights.iter()) {
                                let mut value = p.value_mut();
                                match value.as_slice_mut() {
                                    Some(s) => s.copy_from_slice(w),
                                    None => value.iter_mut().zip(w).for_each(|(a, b)| *a = *b),
                                }
                            }
                            let x = Tensor::from_vec(&job.shape, job.x);
                            let mut rng = ChaCha8Rng::seed_from_u64(job.seed);
                            let part = replica_step(&model, &x, &job.labels, &mut rng);
                            if result_tx.send(Ok(part)).is_err() {
                                return;
                            }
                        }
                    })
                    .expect("spawning a training thread");
                Replica { jobs, results, thread: Some(thread) }
            })
            .collect();
        Pool { replicas }
    }

    /// Threads in all, the main one included.
    pub(crate) fn threads(&self) -> usize {
        self.replicas.len() + 1
    }

    /// Sends part `k + 1` of a batch (`x` `shape`, `labels`) to helper `k`,
    /// with the weights and its dropout seed.
    pub(crate) fn send(
        &self,
        k: usize,
        weights: &Arc<Vec<Vec<f32>>>,
        part: (Vec<f32>, Vec<usize>, Vec<usize>),
        seed: u64,
    ) {
        let (x, shape, labels) = part;
        let job = Job { weights: weights.clone(), x, shape, labels, seed };
        self.replicas[k].jobs.send(job).expect("a training thread stopped");
    }

    /// Helper `k`'s result.
    pub(crate) fn receive(&self, k: usize) -> PartResult {
        match self.replicas[k].results.recv() {
            Ok(Ok(part)) => part,
            Ok(Err(e)) => panic!("a training thread could not build the model: {e}"),
            Err(_) => panic!("a training thread stopped"),
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        for r in &mut self.replicas {
            // Closing the job channel ends the thread's loop.
            let (dead, _) = channel();
            drop(std::mem::replace(&mut r.jobs, dead));
            if let Some(t) = r.thread.take() {
                let _ = t.join();
            }
        }
    }
}

/// `rows` split into `parts` contiguous ranges as even as can be (the first
/// ones one longer).
pub(crate) fn split(rows: usize, parts: usize) -> Vec<std::ops::Range<usize>> {
    let (base, extra) = (rows / parts, rows % parts);
    let mut start = 0;
    (0..parts)
        .map(|k| {
            let len = base + usize::from(k < extra);
            let r = start..start + len;
            start += len;
            r
        })
        .collect()
}
