//! `Trainer`: training as a state machine. A step is `begin_step` (records the
//! batch's forward and backward pass, the update and the metric counters on the
//! model's device, without waiting), `PendingStep::read` (the metrics; ready at
//! once on the CPU, one small awaited readback on the GPU) and `finish_step`;
//! `step()` does the three at once where waiting is allowed. The CLI loops over
//! `step()`, the worker's slice loop awaits `read`, tests do either.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use web_time::Instant;

use crate::autograd::no_grad;
pub use crate::backend::cpu::argmax;
use crate::backend::{Device, StepCounters, Storage};
use crate::data::{epoch_shuffle_seed, lcg_permutation, Data};
use crate::error::{Error, Result};
use crate::nn::{Mode, Model, ModelSpec};
use crate::optim::Optimizer;
use crate::tensor::{Array, Tensor};

mod checkpoint;
pub mod measure;
mod parallel;
pub use parallel::{Chunk, Claims, PartJob, PartResult, Replica, CHUNKS_PER_WORKER};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepMetrics {
    /// Optimizer steps done so far (this one included).
    pub step: usize,
    pub epoch: usize,
    /// Fraction of the current epoch done, in [0, 1].
    pub epoch_progress: f32,
    pub loss: f32,
    /// Accuracy on this batch.
    pub accuracy: f32,
    pub samples_per_s: f32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalMetrics {
    pub loss: f32,
    pub accuracy: f32,
    pub samples: usize,
    /// Fraction of sequences with every position right (sequence tasks only).
    pub sequence_accuracy: Option<f32>,
    /// `confusion[true][predicted]` counts (classifications of up to 32 classes).
    pub confusion: Vec<Vec<u32>>,
    /// The predicted class of each evaluated example, in order.
    #[serde(skip)]
    pub predicted: Vec<u8>,
}

/// Everything a step changes, as it was before the step, so a diverging step
/// can be undone: copies on the CPU, the arrays themselves on the GPU (whose
/// updates write new ones).
struct Snapshot {
    weights: Vec<Storage>,
    optimizer: Optimizer,
}

/// Where the data order stands.
#[derive(Clone, PartialEq)]
struct Counters {
    cursor: usize,
    epoch: usize,
    step: usize,
    samples_seen: usize,
    order: Vec<u32>,
    dropout_rng: ChaCha8Rng,
}

/// A trainer's state at one step, on its device (see `Trainer::checkpoint`).
pub struct Checkpoint {
    weights: Vec<Storage>,
    optimizer: Optimizer,
    counters: Counters,
}

/// A checkpoint read back to the CPU: enough to go on training anywhere
/// (equal when every value is).
#[derive(Clone, PartialEq)]
pub struct HostCheckpoint {
    pub weights: Vec<Array>,
    optimizer_state: Vec<(Array, Array)>,
    optimizer_t: u64,
    counters: Counters,
}

impl HostCheckpoint {
    /// The steps trained when it was taken.
    pub fn step(&self) -> usize {
        self.counters.step
    }
}

impl Checkpoint {
    pub fn step(&self) -> usize {
        self.counters.step
    }
    /// Reads the checkpoint back (immediate for a CPU trainer; in the browser a
    /// GPU readback must be awaited).
    pub async fn to_host(self) -> std::result::Result<HostCheckpoint, crate::backend::GpuError> {
        let state = self.optimizer.state();
        let mut all: Vec<&Storage> = self.weights.iter().collect();
        for (m, v) in &state {
            all.push(m);
            all.push(v);
        }
        let mut arrays = Storage::read_all(&all).await?.into_iter();
        let weights: Vec<Array> = arrays.by_ref().take(self.weights.len()).collect();
        let mut optimizer_state = Vec::with_capacity(state.len());
        while let (Some(m), Some(v)) = (arrays.next(), arrays.next()) {
            optimizer_state.push((m, v));
        }
        Ok(HostCheckpoint { weights, optimizer_state, optimizer_t: self.optimizer.t, counters: self.counters })
    }
}

/// A training step whose metrics may still be on their way back from the
/// device: `Trainer::begin_step` makes it, `Trainer::finish_step` completes it
/// with the three words `read` returns (loss, right predictions, non-finite
/// count), so the browser can await a GPU readback without blocking.
pub struct PendingStep {
    loss: Storage,
    counters: StepCounters,
    /// Where the data order stood before this step's batch, and the batch's end.
    start: (usize, usize),
    /// The dropout generator before this step's masks.
    rng_before: ChaCha8Rng,
    end: usize,
    rows: usize,
    started: Instant,
    before: Snapshot,
    /// Which `begin_step` this was (see `Trainer::dropped_through`).
    serial: u64,
}

/// The start of a step (`Trainer::step_start`).
struct StepStart {
    started: Instant,
    start: (usize, usize),
    rng_before: ChaCha8Rng,
    end: usize,
    batch: crate::data::Batch,
    before: Snapshot,
    counters: StepCounters,
}

/// A step whose batch is split across workers (`Trainer::split_step`), in
/// chunks (`parallel::Chunk`).
pub struct SplitStep {
    begun: StepStart,
    /// The chunks' rows of the batch, and their dropout seeds.
    chunks: Vec<std::ops::Range<usize>>,
    seeds: Vec<u64>,
    /// Chunks the trainer took (`next_own`), and the results of those it
    /// computed (`Trainer::train_chunk`).
    taken: Vec<bool>,
    own: Vec<Option<PartResult>>,
    /// The dropout generator as the step leaves it (every chunk's seed
    /// drawn): the trainer's becomes it in `finish_split`, so that until then
    /// (a checkpoint taken while the parts are out, a dropped step) the
    /// trainer is as before the step.
    rng: ChaCha8Rng,
}

impl SplitStep {
    /// The chunks of the step.
    pub fn chunks(&self) -> usize {
        self.chunks.len()
    }

    /// The next chunk for the trainer: the first it has not taken for which
    /// `claim` says yes (it asks, from the first chunk up, until one does;
    /// a chunk that a helper has begun says no), `None` when none is left.
    pub fn next_own(&mut self, mut claim: impl FnMut(usize) -> bool) -> Option<usize> {
        let next = (0..self.chunks.len()).find(|&c| !self.taken[c] && claim(c))?;
        self.taken[next] = true;
        Some(next)
    }
}

impl PendingStep {
    /// The step's metric words: the loss's bits, right predictions, non-finite
    /// values (ready at once on the CPU; one small readback on the GPU).
    pub async fn read(&self) -> std::result::Result<[u32; 3], crate::backend::GpuError> {
        let w = self.counters.read(&self.loss).await?;
        Ok([w[0], w[1], w[2]])
    }
}

pub struct Trainer {
    pub model: Model,
    pub optimizer: Optimizer,
    params: Vec<(String, Tensor)>,
    train: Data,
    test: Data,
    example_shape: Vec<usize>,
    batch_size: usize,
    order: Vec<u32>,
    cursor: usize,
    epoch: usize,
    step: usize,
    samples_seen: usize,
    dropout_rng: ChaCha8Rng,
    last_good: Option<Snapshot>,
    /// Steps begun and not yet finished, and their examples.
    in_flight: (usize, usize),
    /// `begin_step`s so far; those up to `dropped_through` were begun before
    /// an earlier step diverged, and are not to be finished.
    begun: u64,
    dropped_through: u64,
    /// Helper threads for data-parallel steps on the CPU (`set_threads`).
    #[cfg(not(target_arch = "wasm32"))]
    pool: Option<parallel::Pool>,
}

impl Trainer {
    pub fn new(spec: &ModelSpec, train: impl Into<Data>, test: impl Into<Data>) -> Result<Trainer> {
        let (train, test) = (train.into(), test.into());
        let model = Model::new(spec)?;
        if train.is_empty() {
            return Err(Error::Input(
                "the training set is empty: there is nothing to train on; give it at least one example".into(),
            ));
        }
        // Accuracy and loss are means over the test set: over nothing they would
        // be made-up figures.
        if test.is_empty() {
            return Err(Error::Input(
                "the test set is empty: there is nothing to measure accuracy on; give it at least one example".into(),
            ));
        }
        let params = model.parameters();
        let optimizer = Optimizer::new(&spec.training.optimizer, &params);
        let seed = spec.training.seed;
        let order = lcg_permutation(train.len(), epoch_shuffle_seed(seed, 0));
        let mut dropout_rng = ChaCha8Rng::seed_from_u64(seed);
        dropout_rng.set_stream(u64::MAX);
        Ok(Trainer {
            example_shape: model.info.input_shape.clone(),
            batch_size: spec.training.batch_size,
            model,
            optimizer,
            params,
            train,
            test,
            order,
            cursor: 0,
            epoch: 0,
            step: 0,
            samples_seen: 0,
            dropout_rng,
            last_good: None,
            in_flight: (0, 0),
            begun: 0,
            dropped_through: 0,
            #[cfg(not(target_arch = "wasm32"))]
            pool: None,
        })
    }

    pub fn steps_done(&self) -> usize {
        self.step
    }
    /// Training examples stepped over so far.
    pub fn samples_seen(&self) -> usize {
        self.samples_seen
    }
    pub fn epoch(&self) -> usize {
        self.epoch
    }
    /// Optimizer steps in one epoch (the last batch may be smaller).
    pub fn steps_per_epoch(&self) -> usize {
        self.train.len().div_ceil(self.batch_size)
    }
    pub fn set_lr(&mut self, lr: f32) {
        self.optimizer.set_lr(lr);
    }
    pub fn parameters(&self) -> &[(String, Tensor)] {
        &self.params
    }

    /// Where the model and the optimizer state live.
    pub fn device(&self) -> Device {
        self.params.first().map_or(Device::Cpu, |(_, p)| p.device())
    }

    /// A trainer whose model and optimizer state live on `device`.
    pub fn with_device(
        spec: &ModelSpec,
        train: impl Into<Data>,
        test: impl Into<Data>,
        device: &Device,
    ) -> Result<Trainer> {
        let mut t = Trainer::new(spec, train, test)?;
        for p in t.model.tensors() {
            p.upload_to(device);
        }
        t.optimizer = Optimizer::new(&spec.training.optimizer, &t.params);
        Ok(t)
    }

    /// Moves the model and the optimizer state to `device` (natively: a readback
    /// from the GPU waits for it). Training goes on from the same weights.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn to_device(&mut self, device: &Device) -> std::result::Result<(), crate::backend::GpuError> {
        let host = pollster::block_on(self.checkpoint().to_host())?;
        self.restore(&host, device);
        Ok(())
    }

    /// Everything needed to go on from this point: the weights and the
    /// optimizer state (copies on the CPU; on the GPU the arrays themselves,
    /// which later updates replace rather than overwrite), and the data
    /// position. Cheap to take; `Checkpoint::to_host` reads it back.
    pub fn checkpoint(&self) -> Checkpoint {
        let Snapshot { weights, optimizer } = self.snapshot();
        Checkpoint {
            weights,
            optimizer,
            // A step begun and not finished is in the weights and the data
            // position: counted as done.
            counters: Counters {
                cursor: self.cursor,
                epoch: self.epoch,
                step: self.step + self.in_flight.0,
                samples_seen: self.samples_seen + self.in_flight.1,
                order: self.order.clone(),
                dropout_rng: self.dropout_rng.clone(),
            },
        }
    }

    /// Goes back to `host` (weights, optimizer state, data position) with the model
    /// on `device`: how a GPU run continues on the CPU.
    pub fn restore(&mut self, host: &HostCheckpoint, device: &Device) {
        for ((_, p), w) in self.params.iter().zip(&host.weights) {
            p.set_storage(Storage::Cpu(w.clone()).upload_to(device));
        }
        for t in self.model.tensors().iter().skip(self.params.len()) {
            t.upload_to(device);
        }
        self.optimizer.set_state(host.optimizer_state.clone(), device);
        self.optimizer.t = host.optimizer_t;
        let c = host.counters.clone();
        (self.cursor, self.epoch, self.step, self.samples_seen, self.order, self.dropout_rng) =
            (c.cursor, c.epoch, c.step, c.samples_seen, c.order, c.dropout_rng);
        self.last_good = None;
        self.in_flight = (0, 0);
        self.dropped_through = self.begun;
        for (_, p) in &self.params {
            p.zero_grad();
        }
    }

    /// Trains on the next batch: `begin_step`, its metrics read (waiting for
    /// the GPU natively), `finish_step`. On a non-finite loss or gradient,
    /// restores the weights of the last good step and returns
    /// `Error::NonFiniteLoss`; training can go on after the learning rate is lowered.
    ///
    /// # Errors
    /// `NonFiniteLoss` as above; `Gpu` when the GPU fails, or in the browser for
    /// a model on the GPU, whose steps must be awaited (`begin_step`,
    /// `PendingStep::read`, `finish_step`; the worker's slice loop does).
    pub fn step(&mut self) -> Result<StepMetrics> {
        #[cfg(target_arch = "wasm32")]
        if self.device().is_gpu() {
            return Err(Error::Gpu("in the browser a GPU step is awaited: begin_step, read, finish_step".into()));
        }
        let pending = self.begin_step();
        #[cfg(not(target_arch = "wasm32"))]
        let words = pollster::block_on(pending.read());
        #[cfg(target_arch = "wasm32")]
        let words = crate::backend::ready(pending.read());
        self.finish_step(pending, words.map_err(|e| Error::Gpu(e.0))?)
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            // A copy on the CPU; on the GPU the arrays themselves, shared: the
            // update writes new ones (`backend::apply_update`), so a step
            // copies no weights there.
            weights: self.params.iter().map(|(_, p)| p.storage().clone()).collect(),
            optimizer: self.optimizer.clone(),
        }
    }

    /// Records the next step on the model's device (forward, backward, the
    /// optimizer update and the metric counters) without waiting for it, and
    /// moves on to the next batch. Complete it with `finish_step`, in the order
    /// begun. The next step may be begun before this one is finished (the GPU
    /// then runs one step while the host records the next; `run_pipelined`);
    /// if a step diverges, the steps begun after it are dropped. With helper
    /// threads (`set_threads`) the batch is split across them.
    pub fn begin_step(&mut self) -> PendingStep {
        #[cfg(not(target_arch = "wasm32"))]
        if let Some((mut split, jobs)) = self.split_step(self.threads()) {
            let pool = self.pool.as_ref().expect("threads() > 1 has a pool");
            let claims = std::sync::Arc::new(parallel::Claims::default());
            let sent = jobs.len();
            for (k, mut job) in jobs.into_iter().enumerate() {
                job.claims = Some(claims.clone());
                pool.send(k, job);
            }
            while let Some(index) = split.next_own(|c| claims.take(c)) {
                self.train_chunk(&mut split, index);
            }
            let pool = self.pool.as_ref().expect("threads() > 1 has a pool");
            let parts = (0..sent).flat_map(|k| pool.receive(k)).collect();
            return self.finish_split(split, parts);
        }
        let mut begun = self.step_start();
        let x = Tensor::from_vec(&begun.batch.shape, std::mem::take(&mut begun.batch.x));
        // Token ids are read on the CPU by the embedding; images and
        // sequences go to the device once here.
        if !self.model.takes_ids() {
            x.upload_to(&self.device());
        }
        let (logits, loss) =
            forward_backward(&self.model, &self.params, &x, &begun.batch.labels, &mut self.dropout_rng);
        begun.counters.count_correct(0, &logits.storage(), &begun.batch.labels);
        self.step_end(begun, loss)
    }

    /// What every step starts from: the batch, where the data order and the
    /// dropout generator stood, the weights before the update.
    fn step_start(&mut self) -> StepStart {
        let end = (self.cursor + self.batch_size).min(self.order.len());
        StepStart {
            started: Instant::now(),
            start: (self.cursor, self.epoch),
            rng_before: self.dropout_rng.clone(),
            end,
            batch: self.train.batch(&self.order[self.cursor..end], &self.example_shape),
            before: self.snapshot(),
            counters: StepCounters::new(&self.device(), 2),
        }
    }

    /// The rest of a step once its gradients are on the parameters and its
    /// correct predictions counted: the optimizer update, the next batch.
    fn step_end(&mut self, begun: StepStart, loss: Tensor) -> PendingStep {
        let StepStart { started, start, rng_before, end, batch, before, counters } = begun;
        counters.count_nonfinite(1, &loss.storage());
        // Applied now and undone in `finish_step` if the metrics say it diverged,
        // so the device never waits for the host within a step. It counts every
        // non-finite gradient entry as it goes (an f32 sum of large finite
        // entries could overflow and call a healthy step diverged).
        self.optimizer.step(&self.params, &counters, 1);
        self.device().flush();
        let loss = loss.storage().clone();
        let rows = batch.labels.len();
        self.move_to(end, self.epoch);
        self.in_flight = (self.in_flight.0 + 1, self.in_flight.1 + rows);
        self.begun += 1;
        PendingStep { loss, counters, start, rng_before, end, rows, started, before, serial: self.begun }
    }

    /// Trains on the CPU with `threads` threads in all (data-parallel, see
    /// `parallel`); 1 (or 0) trains on this thread alone. A model on the GPU
    /// starts none and trains as before.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn set_threads(&mut self, threads: usize) {
        let cpu = !self.device().is_gpu();
        self.pool = (threads > 1 && cpu).then(|| parallel::Pool::new(&self.model.spec, threads - 1));
    }

    /// Threads a step uses (`set_threads`; 1 on the GPU, and in the browser,
    /// where the worker splits steps itself with `split_step`).
    pub fn threads(&self) -> usize {
        #[cfg(not(target_arch = "wasm32"))]
        return self.pool.as_ref().filter(|_| !self.device().is_gpu()).map_or(1, parallel::Pool::threads);
        #[cfg(target_arch = "wasm32")]
        return 1;
    }

    /// Begins the next step split across `parts` workers: the batch cut into
    /// chunks (`parallel::chunk_rows`, each with a dropout seed drawn from the
    /// trainer's generator), and one job per helper (`parts - 1`) with the
    /// chunks it goes through (`parallel::helper_queues`). The trainer takes
    /// chunks with `SplitStep::next_own` and computes them with
    /// `train_chunk` while the helpers compute theirs; their results complete
    /// the step (`finish_split`). `None`, with nothing changed, when there is
    /// nothing to split: fewer than 2 parts or examples, or a model on the GPU.
    pub fn split_step(&mut self, parts: usize) -> Option<(SplitStep, Vec<PartJob>)> {
        let rows = (self.cursor + self.batch_size).min(self.order.len()) - self.cursor;
        if parts < 2 || rows < 2 || self.device().is_gpu() {
            return None;
        }
        let begun = self.step_start();
        // Every worker with a chunk at least (`Claims` holds 64).
        let parts = parts.min(rows).min(parallel::CHUNKS_PER_WORKER * parallel::MAX_THREADS);
        let chunks = parallel::chunk_rows(rows, parts);
        let mut rng = self.dropout_rng.clone();
        let seeds: Vec<u64> = chunks.iter().map(|_| rand::Rng::random::<u64>(&mut rng)).collect();
        let weights = std::sync::Arc::new(self.weight_values());
        let jobs = parallel::helper_queues(chunks.len(), parts)
            .into_iter()
            .map(|queue| {
                // The rows the job's chunks cover, from its lowest chunk's first.
                let low = queue.iter().map(|&c| chunks[c].start).min().unwrap_or(0);
                let high = queue.iter().map(|&c| chunks[c].end).max().unwrap_or(0);
                let part = begun.batch.rows(low..high);
                let chunks = queue
                    .iter()
                    .map(|&c| parallel::Chunk {
                        index: c,
                        rows: chunks[c].start - low..chunks[c].end - low,
                        seed: seeds[c],
                    })
                    .collect();
                PartJob {
                    weights: weights.clone(),
                    x: part.x,
                    shape: part.shape,
                    labels: part.labels,
                    chunks,
                    claims: None,
                    evaluate: false,
                }
            })
            .collect();
        let n = chunks.len();
        Some((SplitStep { begun, chunks, seeds, taken: vec![false; n], own: vec![None; n], rng }, jobs))
    }

    /// An evaluation of the first `limit` test examples split into `parts`
    /// contiguous parts (as even as can be): the rows the trainer takes
    /// (`eval_logits`), and jobs for `Replica`s elsewhere with the others'
    /// examples and the weights (`PartJob::evaluate`); `eval_metrics` over
    /// the logits of all, in order, gives `evaluate`'s figures. `None` when
    /// there are fewer examples than parts, or the model is on the GPU.
    pub fn evaluation_parts(&self, limit: usize, parts: usize) -> Option<(std::ops::Range<usize>, Vec<PartJob>)> {
        let n = limit.min(self.test.len());
        if parts < 2 || n < parts || self.device().is_gpu() {
            return None;
        }
        let ranges = parallel::split(n, parts);
        let weights = std::sync::Arc::new(self.weight_values());
        let jobs = ranges[1..]
            .iter()
            .map(|r| {
                let idx: Vec<u32> = (r.start as u32..r.end as u32).collect();
                let part = self.test.batch(&idx, &self.model.info.input_shape);
                PartJob {
                    weights: weights.clone(),
                    x: part.x,
                    shape: part.shape,
                    labels: Vec::new(),
                    chunks: vec![parallel::Chunk { index: 0, rows: 0..r.len(), seed: 0 }],
                    claims: None,
                    evaluate: true,
                }
            })
            .collect();
        Some((ranges[0].clone(), jobs))
    }

    /// Every parameter's values, row-major, one after another (`PartJob::weights`).
    fn weight_values(&self) -> Vec<f32> {
        let mut weights = Vec::with_capacity(self.params.iter().map(|(_, p)| p.len()).sum());
        for (_, p) in &self.params {
            weights.extend(p.value().iter());
        }
        weights
    }

    /// The forward and backward pass of chunk `index` of a split step, on
    /// this trainer's model (run it while the helpers run theirs).
    pub fn train_chunk(&mut self, split: &mut SplitStep, index: usize) {
        let part = split.begun.batch.rows(split.chunks[index].clone());
        let x = Tensor::from_vec(&part.shape, part.x);
        let mut rng = ChaCha8Rng::seed_from_u64(split.seeds[index]);
        let result = parallel::part_gradients(&self.model, &self.params, &x, &part.labels, &mut rng, index);
        split.taken[index] = true;
        split.own[index] = Some(result);
    }

    /// Completes a split step with the helpers' results (any order): every
    /// chunk's gradients summed in the chunks' order, each weighed by its
    /// share of the batch (each chunk's loss is a mean), then the update as
    /// for a whole step. A chunk the trainer computed too (it took it as a
    /// helper began it) counts once; one nobody computed (a helper's answer
    /// that left it out, or whose result does not fit the model) the
    /// trainer computes here. Finish it with
    /// `finish_step`. A split step dropped instead (its helpers failed)
    /// leaves nothing to undo: the data order, the dropout generator and the
    /// weights move only here, so the next step takes the same batch and
    /// masks.
    pub fn finish_split(&mut self, mut split: SplitStep, parts: Vec<PartResult>) -> PendingStep {
        let (weights, params) = (self.params.iter().map(|(_, p)| p.len()).sum::<usize>(), self.params.len());
        for part in parts {
            let fits = part.values.len() == weights && part.reached.len() == params;
            if let Some(slot) = split.own.get_mut(part.chunk).filter(|s| s.is_none() && fits) {
                *slot = Some(part);
            }
        }
        for index in 0..split.chunks.len() {
            if split.own[index].is_none() {
                self.train_chunk(&mut split, index);
            }
        }
        let SplitStep { begun, chunks, own, rng, .. } = split;
        self.dropout_rng = rng;
        // Every example has as many predictions (a digit, or a sequence's
        // positions): a chunk's share is its share of the examples.
        let rows = begun.batch.shape[0] as f32;
        let mut grads = vec![0.0f32; weights];
        let mut reached = vec![false; params];
        let (mut loss, mut correct) = (0.0f32, 0);
        for (part, r) in own.into_iter().flatten().zip(&chunks) {
            let share = r.len() as f32 / rows;
            grads.iter_mut().zip(&part.values).for_each(|(s, g)| *s += g * share);
            reached.iter_mut().zip(&part.reached).for_each(|(a, b)| *a |= b);
            loss += part.loss * share;
            correct += part.correct;
        }
        // A parameter the loss reaches in no chunk keeps no gradient, as with
        // one thread (the optimizer leaves it alone).
        let mut at = 0;
        for ((_, p), reached) in self.params.iter().zip(reached) {
            let g = &grads[at..at + p.len()];
            at += p.len();
            match reached {
                true => {
                    p.set_grad(Storage::Cpu(Array::from_shape_vec(p.shape(), g.to_vec()).expect("a parameter's shape")))
                }
                false => p.zero_grad(),
            }
        }
        begun.counters.add(0, correct);
        self.step_end(begun, Tensor::scalar(loss))
    }

    /// Puts the data order at `cursor` of `epoch` (the next epoch, reshuffled,
    /// past the last example).
    fn move_to(&mut self, cursor: usize, epoch: usize) {
        let (cursor, epoch) = if cursor >= self.order.len() { (0, epoch + 1) } else { (cursor, epoch) };
        if epoch != self.epoch {
            self.order = lcg_permutation(self.train.len(), epoch_shuffle_seed(self.model.spec.training.seed, epoch));
        }
        (self.cursor, self.epoch) = (cursor, epoch);
    }

    /// Completes a step from `begin_step` with the words its `read` returned.
    pub fn finish_step(
        &mut self,
        pending: PendingStep,
        [loss_bits, correct, nonfinite]: [u32; 3],
    ) -> Result<StepMetrics> {
        if pending.serial <= self.dropped_through {
            return Err(Error::Input(
                "this step was begun after an earlier step diverged and was dropped with it; begin a new step".into(),
            ));
        }
        self.in_flight = (self.in_flight.0 - 1, self.in_flight.1 - pending.rows);
        let loss = f32::from_bits(loss_bits);
        if !loss.is_finite() || nonfinite > 0 {
            // The update was applied already: with no earlier good step, undo it.
            if self.last_good.is_none() {
                self.last_good = Some(pending.before);
            }
            // Steps begun after this one are dropped, and the data order and
            // the dropout masks go back to this step's: a retry at a lower
            // learning rate takes the same batch.
            self.dropped_through = self.begun;
            self.in_flight = (0, 0);
            self.move_to(pending.start.0, pending.start.1);
            self.dropout_rng = pending.rng_before;
            return Err(self.diverged(if loss.is_finite() { f32::NAN } else { loss }));
        }
        self.last_good = Some(pending.before);
        self.step += 1;
        self.samples_seen += pending.rows;
        let secs = pending.started.elapsed().as_secs_f32().max(1e-9);
        Ok(StepMetrics {
            step: self.step,
            epoch: pending.start.1,
            epoch_progress: pending.end as f32 / self.order.len() as f32,
            loss,
            accuracy: correct as f32 / pending.rows.max(1) as f32,
            samples_per_s: pending.rows as f32 / secs,
        })
    }

    /// Trains `steps` steps, on the GPU with the next one always begun before
    /// the last one's metrics are read, so that the GPU never waits for the
    /// host to record a step (natively; on the CPU it is `step` in a loop). `each`
    /// gets every step's metrics; the first error stops the run (a diverging
    /// step is undone as in `step`, and the one begun after it dropped).
    ///
    /// # Errors
    /// As `step`.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn run_pipelined(&mut self, steps: usize, mut each: impl FnMut(&StepMetrics)) -> Result<()> {
        // On the CPU a step's words are ready at once: nothing to overlap,
        // and a second snapshot alive would only churn memory.
        if !self.device().is_gpu() {
            for _ in 0..steps {
                each(&self.step()?);
            }
            return Ok(());
        }
        let mut pending = (steps > 0).then(|| self.begin_step());
        for done in 1..=steps {
            let Some(current) = pending.take() else { break };
            pending = (done < steps).then(|| self.begin_step());
            let words = pollster::block_on(current.read()).map_err(|e| Error::Gpu(e.0))?;
            each(&self.finish_step(current, words)?);
        }
        Ok(())
    }

    fn diverged(&mut self, value: f32) -> Error {
        if let Some(snap) = &self.last_good {
            for ((_, p), w) in self.params.iter().zip(&snap.weights) {
                p.set_storage(w.clone());
            }
            self.optimizer = snap.optimizer.clone();
        }
        for (_, p) in &self.params {
            p.zero_grad();
        }
        let lr = self.optimizer.lr();
        Error::NonFiniteLoss { step: self.step + 1, value, suggested_lr: lr / 10.0 }
    }

    /// Loss, accuracy and confusion matrix over the first `limit` test examples
    /// (all of them if `None`).
    pub fn evaluate(&self, limit: Option<usize>) -> EvalMetrics {
        evaluate(&self.model, &self.test, limit)
    }

    /// The test set (for showing examples).
    pub fn test_set(&self) -> &Data {
        &self.test
    }

    /// The training set (shared; for measuring the backends on real batches).
    pub fn train_set(&self) -> &Data {
        &self.train
    }
}

/// One training pass of `model` over `x`: the logits and the mean
/// cross-entropy loss, with the gradients of `params` (the model's, zeroed
/// first) left on them. Every training step runs it, on each thread's part
/// of the batch too (`parallel`).
fn forward_backward(
    model: &Model,
    params: &[(String, Tensor)],
    x: &Tensor,
    labels: &[usize],
    rng: &mut ChaCha8Rng,
) -> (Tensor, Tensor) {
    let logits = model.forward_logits(x, Mode::Train(rng));
    let loss = logits.softmax_cross_entropy(labels);
    for (_, p) in params {
        p.zero_grad();
    }
    loss.backward();
    (logits, loss)
}

/// Evaluates `model` on `data` in batches of 1000, without recording a graph.
/// Accuracy is per prediction: per image, or per position of a sequence.
/// `data` and `limit` must leave at least one example (a `Trainer` refuses an
/// empty test set, the CLI `--limit-test 0`): over none, the figures are NaN.
/// Loss sums are f64.
pub fn evaluate(model: &Model, data: &Data, limit: Option<usize>) -> EvalMetrics {
    let n = limit.map_or(data.len(), |l| l.min(data.len()));
    eval_metrics(model, data, n, &eval_logits(model, data, 0..n))
}

/// The logits of examples `rows` of `data` (`[rows, ..output]`, row-major),
/// in batches of 1000 without recording a graph: `evaluate`'s forward pass,
/// which the page splits across its workers (`PartJob::evaluate`).
pub fn eval_logits(model: &Model, data: &Data, rows: std::ops::Range<usize>) -> Vec<f32> {
    let mut logits = Vec::new();
    for start in rows.clone().step_by(1000) {
        let idx: Vec<u32> = (start as u32..(start + 1000).min(rows.end) as u32).collect();
        let batch = data.batch(&idx, &model.info.input_shape);
        logits.extend(eval_logits_of(model, Tensor::from_vec(&batch.shape, batch.x)));
    }
    logits
}

/// The logits of `x` `[rows, ..input]`, row-major, in evaluation mode.
pub(crate) fn eval_logits_of(model: &Model, x: Tensor) -> Vec<f32> {
    no_grad(|| {
        let logits = model.forward_logits(&x, Mode::Eval).to_array();
        logits.as_standard_layout().iter().copied().collect()
    })
}

/// `evaluate`'s figures over the first `n` examples of `data` from their
/// `logits` (`eval_logits` of `0..n`, or its parts one after another).
///
/// # Panics
/// When `logits` do not hold `n` examples' outputs.
pub fn eval_metrics(model: &Model, data: &Data, n: usize, logits: &[f32]) -> EvalMetrics {
    let output = &model.info.output_shape;
    let classes = *output.last().unwrap_or(&1);
    let per_example = output.iter().product::<usize>() / classes.max(1);
    assert_eq!(logits.len(), n * per_example * classes, "eval_metrics: logits of {n} examples");
    let with_confusion = classes <= 32;
    let mut confusion =
        vec![vec![0u32; if with_confusion { classes } else { 0 }]; if with_confusion { classes } else { 0 }];
    let (mut loss_sum, mut correct, mut rows, mut whole) = (0.0f64, 0usize, 0usize, 0usize);
    let mut predicted = Vec::with_capacity(n * per_example);
    no_grad(|| {
        for start in (0..n).step_by(1000) {
            let idx: Vec<u32> = (start as u32..(start + 1000).min(n) as u32).collect();
            let labels = data.labels(&idx);
            let width = per_example * classes;
            let lv = &logits[start * width..(start + idx.len()) * width];
            let shape: Vec<usize> = std::iter::once(idx.len()).chain(output.iter().copied()).collect();
            let chunk = Tensor::from_vec(&shape, lv.to_vec());
            loss_sum += chunk.softmax_cross_entropy(&labels).item() as f64 * labels.len() as f64;
            let mut example_ok = true;
            for (k, (row, &y)) in lv.chunks(classes).zip(&labels).enumerate() {
                let p = argmax(row);
                if with_confusion {
                    confusion[y][p] += 1;
                }
                predicted.push(p as u8);
                correct += (p == y) as usize;
                example_ok &= p == y;
                if (k + 1) % per_example == 0 {
                    whole += example_ok as usize;
                    example_ok = true;
                }
            }
            rows += labels.len();
        }
    });
    // Over no example these are 0/0 = NaN, never a made-up 0.
    let rows = rows as f64;
    let sequence_accuracy = (per_example > 1).then(|| (whole as f64 / n as f64) as f32);
    EvalMetrics {
        loss: (loss_sum / rows) as f32,
        accuracy: (correct as f64 / rows) as f32,
        samples: n,
        sequence_accuracy,
        confusion,
        predicted,
    }
}
