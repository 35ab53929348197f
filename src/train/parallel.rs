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
//! The split is the trainer's (`Trainer::split_step`, `train_own_part`,
//! `finish_split`); where the parts run is the caller's: these threads
//! natively, the page's helper Web Workers in the browser (`worker::web`),
//! each running a `Replica` on the `PartJob`s it is sent.

#[cfg(not(target_arch = "wasm32"))]
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
#[cfg(not(target_arch = "wasm32"))]
use std::thread::JoinHandle;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::error::Result;
use crate::nn::{Model, ModelSpec};
use crate::tensor::Tensor;

/// One part of a batch for a replica: the weights to use, the part's
/// examples and labels, and the seed of its dropout masks (drawn from the
/// trainer's generator, so that checkpoints and undone steps cover every
/// part's masks).
#[derive(Clone, Debug)]
pub struct PartJob {
    /// Every parameter's values, row-major, one after another in
    /// `Model::parameters` order (shared by the parts of a step).
    pub weights: Arc<Vec<f32>>,
    /// The examples, `shape` row-major (`[rows, ...]`: pixels, or token ids as f32).
    pub x: Vec<f32>,
    pub shape: Vec<usize>,
    /// One class per example, or per position for a sequence task.
    pub labels: Vec<usize>,
    pub seed: u64,
    /// A part of an evaluation, not of a step: the replica sends back the
    /// logits of `x` (`PartResult::values`, `[rows, ..output]` row-major),
    /// computed as `train::eval_logits` does; `labels` and `seed` are unused.
    pub evaluate: bool,
}

/// What a replica sends back for its part: the gradients of its mean loss
/// (`values`: every parameter's, row-major, one after another as in
/// `PartJob::weights`), which parameters the loss reached (the others'
/// stretch is zeros, and the optimizer leaves a parameter no part reaches
/// alone), its mean loss and correct predictions. For an evaluation part
/// (`PartJob::evaluate`), `values` are the logits and the rest is empty.
#[derive(Clone, Debug, PartialEq)]
pub struct PartResult {
    pub values: Vec<f32>,
    pub reached: Vec<bool>,
    pub loss: f32,
    pub correct: u32,
}

/// A model that computes the gradients of parts of batches for a trainer
/// elsewhere (a thread, or a helper Web Worker).
pub struct Replica {
    model: Model,
    params: Vec<(String, Tensor)>,
}

impl Replica {
    /// A replica of `spec`'s model (its weights come with every job).
    ///
    /// # Errors
    /// `Error::Spec` when the spec does not build a model.
    pub fn new(spec: &ModelSpec) -> Result<Replica> {
        let model = Model::new(spec)?;
        let params = model.parameters();
        Ok(Replica { model, params })
    }

    /// Values in all of the model's parameters (the length of a job's weights).
    pub fn weight_count(&self) -> usize {
        self.params.iter().map(|(_, p)| p.len()).sum()
    }

    /// The forward and backward pass of `job`'s part with its weights.
    ///
    /// # Errors
    /// `Error::Input` when the job's weights, examples or labels do not fit
    /// the model (a job meant for another model).
    pub fn run(&self, job: &PartJob) -> Result<PartResult> {
        self.load(job)?;
        let x = Tensor::from_vec(&job.shape, job.x.clone());
        if job.evaluate {
            let values = super::eval_logits_of(&self.model, x);
            return Ok(PartResult { values, reached: Vec::new(), loss: 0.0, correct: 0 });
        }
        let mut rng = ChaCha8Rng::seed_from_u64(job.seed);
        Ok(part_gradients(&self.model, &self.params, &x, &job.labels, &mut rng))
    }

    /// Checks `job` against the model and loads its weights.
    fn load(&self, job: &PartJob) -> Result<()> {
        let bad =
            |what: String| crate::error::Error::Input(format!("a part of a batch does not fit the model: {what}"));
        if job.weights.len() != self.weight_count() {
            return Err(bad(format!("{} weights for {}", job.weights.len(), self.weight_count())));
        }
        if job.shape.iter().product::<usize>() != job.x.len() || job.shape.first().is_none_or(|&rows| rows == 0) {
            return Err(bad(format!("{} values for the shape {:?}", job.x.len(), job.shape)));
        }
        let mut at = 0;
        for (_, p) in &self.params {
            let w = &job.weights[at..at + p.len()];
            at += p.len();
            let mut value = p.value_mut();
            match value.as_slice_mut() {
                Some(s) => s.copy_from_slice(w),
                None => value.iter_mut().zip(w).for_each(|(a, b)| *a = *b),
            }
        }
        Ok(())
    }
}

/// The forward and backward pass of one part on `model`: its loss, correct
/// predictions and the parameters' gradients.
pub(crate) fn part_gradients(
    model: &Model,
    params: &[(String, Tensor)],
    x: &Tensor,
    labels: &[usize],
    rng: &mut ChaCha8Rng,
) -> PartResult {
    let (logits, loss) = super::forward_backward(model, params, x, labels, rng);
    let correct = crate::backend::cpu::count_correct(&logits.value(), labels);
    let mut values = Vec::with_capacity(params.iter().map(|(_, p)| p.len()).sum());
    let mut reached = Vec::with_capacity(params.len());
    for (_, p) in params {
        match p.grad() {
            Some(g) => values.extend(crate::backend::cpu::array::standard(&g).iter().copied()),
            None => values.resize(values.len() + p.len(), 0.0),
        }
        reached.push(p.grad().is_some());
    }
    PartResult { values, reached, loss: loss.item(), correct }
}

#[cfg(not(target_arch = "wasm32"))]
struct Helper {
    jobs: Sender<PartJob>,
    results: Receiver<Result<PartResult>>,
    thread: Option<JoinHandle<()>>,
}

#[cfg(not(target_arch = "wasm32"))]
/// The helper threads of a data-parallel trainer (the main thread is the
/// first worker).
pub(crate) struct Pool {
    helpers: Vec<Helper>,
}

#[cfg(not(target_arch = "wasm32"))]
impl Pool {
    /// `helpers` threads, each with a replica of `spec`'s model.
    pub(crate) fn new(spec: &ModelSpec, helpers: usize) -> Pool {
        let helpers = (0..helpers)
            .map(|k| {
                let (jobs, job_rx) = channel::<PartJob>();
                let (result_tx, results) = channel();
                let spec = spec.clone();
                let thread = std::thread::Builder::new()
                    .name(format!("layerlab-replica-{}", k + 1))
                    .spawn(move || {
                        let replica = match Replica::new(&spec) {
                            Ok(r) => r,
                            Err(e) => {
                                let _ = result_tx.send(Err(e));
                                return;
                            }
                        };
                        while let Ok(job) = job_rx.recv() {
                            if result_tx.send(replica.run(&job)).is_err() {
                                return;
                            }
                        }
                    })
                    .expect("spawning a training thread");
                Helper { jobs, results, thread: Some(thread) }
            })
            .collect();
        Pool { helpers }
    }

    /// Threads in all, the main one included.
    pub(crate) fn threads(&self) -> usize {
        self.helpers.len() + 1
    }

    /// Sends `job` to helper `k`.
    pub(crate) fn send(&self, k: usize, job: PartJob) {
        self.helpers[k].jobs.send(job).expect("a training thread stopped");
    }

    /// Helper `k`'s result.
    pub(crate) fn receive(&self, k: usize) -> PartResult {
        match self.helpers[k].results.recv() {
            Ok(Ok(part)) => part,
            Ok(Err(e)) => panic!("a training thread failed: {e}"),
            Err(_) => panic!("a training thread stopped"),
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl Drop for Pool {
    fn drop(&mut self) {
        for r in &mut self.helpers {
            // Closing the job channel ends the thread's loop.
            let (dead, _) = channel();
            drop(std::mem::replace(&mut r.jobs, dead));
            if let Some(t) = r.thread.take() {
                let _ = t.join();
            }
        }
    }
}

/// `rows` split into `parts` contiguous ranges, the first `extra` rows
/// longer than an even share (`rows / parts`, rounded up; `extra` kept within
/// half an even share either way, and every part keeps a row) and the others
/// as even as can be. With `extra` 0, `split`'s ranges.
pub(crate) fn split_with_first(rows: usize, parts: usize, extra: i64) -> Vec<std::ops::Range<usize>> {
    if extra == 0 || parts < 2 || rows < parts {
        return split(rows, parts);
    }
    let half = (rows / parts / 2) as i64;
    let first = (rows.div_ceil(parts) as i64 + extra.clamp(-half, half)).clamp(1, (rows - (parts - 1)) as i64) as usize;
    std::iter::once(0..first)
        .chain(split(rows - first, parts - 1).into_iter().map(|r| r.start + first..r.end + first))
        .collect()
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

#[cfg(test)]
mod tests {
    use super::{split, split_with_first};

    #[test]
    fn a_batch_splits_evenly_or_with_the_first_part_given() {
        assert_eq!(split(7, 3), [0..3, 3..5, 5..7]);
        assert_eq!(split_with_first(7, 3, 0), split(7, 3));
        assert_eq!(split_with_first(64, 2, 2), [0..34, 34..64]);
        assert_eq!(split_with_first(64, 3, -2), [0..20, 20..42, 42..64]);
        // Within half an even share: the last, short batch of an epoch (32
        // rows) gives its first part 16 + 8 at most, leaving the helper 8.
        assert_eq!(split_with_first(32, 2, 10), [0..24, 24..32]);
        assert_eq!(split_with_first(64, 2, -40), [0..16, 16..64]);
        // Parts of a row or two have no room to move.
        assert_eq!(split_with_first(4, 3, -1), split(4, 3));
        assert_eq!(split_with_first(5, 4, 9), split(5, 4));
        // Too few rows for the parts: as `split` does.
        assert_eq!(split_with_first(2, 3, 1), split(2, 3));
    }
}
