//! Data-parallel training on the CPU across threads (`Trainer::set_threads`,
//! the CLI's `--threads N`), as PyTorch's `DistributedDataParallel` does it
//! across processes: each thread holds a replica of the model, computes the
//! gradients of chunks of the batch, and the gradients are summed (weighted
//! by the chunk's share of the batch, since each chunk's loss is a mean)
//! into the main model's, which the optimizer then updates as for one
//! thread. The replicas take the main model's weights at the start of every
//! step, so they never drift, and a restored checkpoint or an undone
//! diverging step needs nothing more.
//!
//! The result equals one thread's up to the order of floating-point sums.
//! Layers with per-batch state would see their part of the batch only
//! (BatchNormalization, when it comes, needs its statistics summed too, as
//! PyTorch's `SyncBatchNorm`). Each chunk's dropout masks come from a seed
//! the trainer's generator draws for it every step, so a model with dropout
//! trains differently,
//! though as validly, with N threads, and a checkpoint or an undone step
//! still repeats exactly.
//!
//! The batch is cut into chunks (`CHUNKS_PER_WORKER` per worker): the trainer
//! takes them from the first up, each helper its own from the last down, and
//! a chunk someone has taken is not taken again, so whoever is done first
//! goes on with the other's (`Claims`). Every chunk's gradient is the same
//! whoever computes it (its own dropout seed, the same weights), and they
//! are summed in the chunks' order: a split step's result does not depend
//! on who was faster.
//!
//! The split is the trainer's (`Trainer::split_step`, `SplitStep::next_own`,
//! `Trainer::train_chunk`, `finish_split`); where the parts run is the
//! caller's: these threads natively, the page's helper Web Workers in the
//! browser (`worker::helpers`), each running a `Replica` on the `PartJob`s it
//! is sent.

use std::sync::atomic::{AtomicU64, Ordering};
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

/// One chunk of a split step's batch: its index in the step (gradients are
/// summed in this order, whoever computed them), its rows within its job's
/// examples, and the seed of its dropout masks (drawn from the trainer's
/// generator, so that checkpoints and undone steps cover every chunk's masks,
/// and a chunk's gradient is the same whichever worker computes it).
#[derive(Clone, Debug, PartialEq)]
pub struct Chunk {
    pub index: usize,
    pub rows: std::ops::Range<usize>,
    pub seed: u64,
}

/// Which chunks of a split step are taken, shared by the threads of a native
/// step (at most 64 chunks: `CHUNKS_PER_WORKER` times `MAX_THREADS`). The page's
/// workers share no memory: they tell each other by messages instead
/// (`worker::helpers`).
#[derive(Debug, Default)]
pub struct Claims(AtomicU64);

impl Claims {
    /// Takes chunk `index` for the caller: false when someone took it first.
    pub fn take(&self, index: usize) -> bool {
        let bit = 1u64 << index;
        self.0.fetch_or(bit, Ordering::AcqRel) & bit == 0
    }
}

/// Work for a replica: the weights to use, examples and labels, and the
/// chunks of them to compute, in that order. A part of a step stops at the
/// first chunk someone else took (`claims` natively; in the page, the
/// training worker's messages): the training worker takes the chunks in
/// ascending order, a helper its own from the last down, so that whoever is
/// done first goes on with the other's.
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
    /// The chunks to compute, in order (rows within `x`).
    pub chunks: Vec<Chunk>,
    /// Natively, the step's claims (none: every chunk is computed).
    pub claims: Option<Arc<Claims>>,
    /// A part of an evaluation, not of a step: the replica sends back the
    /// logits of `x` (`PartResult::values`, `[rows, ..output]` row-major),
    /// computed as `train::eval_logits` does, as one chunk; `labels` and the
    /// seed are unused.
    pub evaluate: bool,
}

/// What a replica sends back for a chunk: the gradients of its mean loss
/// (`values`: every parameter's, row-major, one after another as in
/// `PartJob::weights`), which parameters the loss reached (the others'
/// stretch is zeros, and the optimizer leaves a parameter no chunk reaches
/// alone), its mean loss and correct predictions. For an evaluation
/// (`PartJob::evaluate`), `values` are the logits and the rest is empty.
#[derive(Clone, Debug, PartialEq)]
pub struct PartResult {
    /// `Chunk::index`.
    pub chunk: usize,
    pub values: Vec<f32>,
    pub reached: Vec<bool>,
    pub loss: f32,
    pub correct: u32,
}

/// Chunks of a split step per worker: a worker done with its own takes the
/// others' a chunk at a time (on two cores shared with the browser, one
/// part of an evenly split step was often late, and the step waited for
/// it). Smaller chunks balance better and cost a forward and backward pass
/// of fewer rows each.
pub const CHUNKS_PER_WORKER: usize = 4;
/// Workers with `CHUNKS_PER_WORKER` chunks each at most (64 chunks in all,
/// as many as `Claims` holds): a step split across more has fewer a worker,
/// and across more than 64, 64 parts (`Trainer::split_step`).
pub const MAX_THREADS: usize = 16;

/// The chunks of a batch of `rows` split across `parts` workers
/// (`CHUNKS_PER_WORKER` each, fewer when the batch has fewer rows): their
/// rows, contiguous and as even as can be.
pub(crate) fn chunk_rows(rows: usize, parts: usize) -> Vec<std::ops::Range<usize>> {
    split(rows, (parts.min(MAX_THREADS) * CHUNKS_PER_WORKER).min(rows).max(1))
}

/// Which chunks the helpers of a split step into `parts` parts go through,
/// helper by helper, each in the order it takes them: with one helper every
/// chunk but the first, from the last down (the training worker comes up
/// from the first; they meet where they meet); with more, helper k its k-th
/// even share of the chunks (after the training worker's own), from the
/// last down, the training worker taking from the front of each once done
/// with its own.
pub(crate) fn helper_queues(chunks: usize, parts: usize) -> Vec<Vec<usize>> {
    if parts < 2 {
        return Vec::new();
    }
    if parts == 2 {
        return vec![(1..chunks).rev().collect()];
    }
    split(chunks, parts)[1..].iter().map(|r| r.clone().rev().collect()).collect()
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

    /// Every chunk of `job` with its weights, in order, up to the first one
    /// someone else took (`PartJob::claims`): the results, in that order.
    ///
    /// # Errors
    /// `Error::Input` when the job's weights, examples, labels or chunks do
    /// not fit the model (a job meant for another model).
    pub fn run(&self, job: &PartJob) -> Result<Vec<PartResult>> {
        self.start(job)?;
        let mut results = Vec::with_capacity(job.chunks.len());
        for k in 0..job.chunks.len() {
            if job.claims.as_ref().is_some_and(|c| !c.take(job.chunks[k].index)) {
                break;
            }
            results.push(self.chunk(job, k));
        }
        Ok(results)
    }

    /// Checks `job` against the model and loads its weights (before `chunk`).
    ///
    /// # Errors
    /// As `run`.
    pub fn start(&self, job: &PartJob) -> Result<()> {
        let bad =
            |what: String| crate::error::Error::Input(format!("a part of a batch does not fit the model: {what}"));
        if job.weights.len() != self.weight_count() {
            return Err(bad(format!("{} weights for {}", job.weights.len(), self.weight_count())));
        }
        let rows = job.shape.first().copied().unwrap_or(0);
        if job.shape.iter().product::<usize>() != job.x.len() || rows == 0 {
            return Err(bad(format!("{} values for the shape {:?}", job.x.len(), job.shape)));
        }
        if !job.evaluate && (job.labels.is_empty() || job.labels.len() % rows != 0) {
            return Err(bad(format!("{} labels for {rows} examples", job.labels.len())));
        }
        if let Some(c) = job.chunks.iter().find(|c| c.rows.is_empty() || c.rows.end > rows || c.index >= 64) {
            return Err(bad(format!("chunk {} has rows {:?} of {rows}", c.index, c.rows)));
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

    /// The forward and backward pass of `job`'s `k`-th chunk (or, for an
    /// evaluation, its logits), with the weights `start` loaded.
    ///
    /// # Panics
    /// When `start` did not accept `job`, or `k` is past its chunks.
    pub fn chunk(&self, job: &PartJob, k: usize) -> PartResult {
        let chunk = &job.chunks[k];
        let rows = job.shape[0];
        let (per_row, labels_per_row) = (job.x.len() / rows, job.labels.len() / rows);
        let mut shape = job.shape.clone();
        shape[0] = chunk.rows.len();
        let x = Tensor::from_vec(&shape, job.x[chunk.rows.start * per_row..chunk.rows.end * per_row].to_vec());
        if job.evaluate {
            let values = super::eval_logits_of(&self.model, x);
            return PartResult { chunk: chunk.index, values, reached: Vec::new(), loss: 0.0, correct: 0 };
        }
        let labels = &job.labels[chunk.rows.start * labels_per_row..chunk.rows.end * labels_per_row];
        let mut rng = ChaCha8Rng::seed_from_u64(chunk.seed);
        part_gradients(&self.model, &self.params, &x, labels, &mut rng, chunk.index)
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
    chunk: usize,
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
    PartResult { chunk, values, reached, loss: loss.item(), correct }
}

#[cfg(not(target_arch = "wasm32"))]
struct Helper {
    jobs: Sender<PartJob>,
    results: Receiver<Result<Vec<PartResult>>>,
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

    /// Helper `k`'s results (the chunks it computed).
    pub(crate) fn receive(&self, k: usize) -> Vec<PartResult> {
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
    use super::{chunk_rows, helper_queues, split, Claims};

    #[test]
    fn a_batch_splits_into_chunks_that_the_workers_take_from_either_end() {
        assert_eq!(split(7, 3), [0..3, 3..5, 5..7]);
        // Four chunks a worker: a batch of 64 across 2 workers, 8 of 8 rows.
        assert_eq!(chunk_rows(64, 2), (0..8).map(|k| 8 * k..8 * k + 8).collect::<Vec<_>>());
        // Fewer rows than chunks: a row each; the epoch's last, short batch.
        assert_eq!(chunk_rows(3, 2), [0..1, 1..2, 2..3]);
        assert_eq!(chunk_rows(10, 2).iter().map(|r| r.len()).collect::<Vec<_>>(), [2, 2, 1, 1, 1, 1, 1, 1]);
        // At most 64 chunks, however many workers.
        assert_eq!(chunk_rows(1000, 40).len(), 64);
        // One helper comes down from the last chunk to the second; more
        // helpers each take their share from its last down.
        assert_eq!(helper_queues(8, 2), [vec![7, 6, 5, 4, 3, 2, 1]]);
        assert_eq!(helper_queues(12, 3), [vec![7, 6, 5, 4], vec![11, 10, 9, 8]]);
        assert!(helper_queues(4, 1).is_empty());
    }

    #[test]
    fn a_chunk_is_taken_once() {
        let claims = Claims::default();
        assert!(claims.take(0) && claims.take(63) && claims.take(5));
        assert!(!claims.take(5) && !claims.take(63));
    }
}
