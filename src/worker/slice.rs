//! Training in slices: up to a number of steps for about a time budget, then
//! the metrics, the evaluations that fall due and the end of the run. One loop
//! for every device: it awaits each step's metrics (ready at once on the CPU),
//! releasing the session meanwhile so that the page's messages are handled.

use std::cell::RefCell;

use web_time::Instant;

use super::device::SYNC_EVERY;
use super::protocol::*;
use super::session::Session;
use crate::error::Error;
use crate::nn::ModelSpec;
use crate::train::{PartJob, PartResult, PendingStep, SplitStep, Trainer};

/// What one slice of training collected (see `Session::slice_start`).
pub(super) struct Slice {
    /// The session's run when the slice began (`Session::run`).
    run: u64,
    first_step: usize,
    samples_before: usize,
    started: Instant,
    max_steps: usize,
    budget_s: f64,
    losses: Vec<f32>,
    /// Seconds of the slice spent evaluating (not training).
    eval_s: f64,
    /// The step just taken, on the CPU, is one to evaluate after.
    evaluate_now: bool,
    last: Option<crate::train::StepMetrics>,
    events: Vec<Event>,
    stop: bool,
}

/// The session as the slice loop reaches it: borrowed for each step's
/// bookkeeping, released while the step's metrics are awaited (the page's
/// worker handles messages meanwhile).
pub trait SessionCell {
    fn with<R>(&self, f: impl FnOnce(&mut Session) -> R) -> R;
}

impl SessionCell for RefCell<Session> {
    fn with<R>(&self, f: impl FnOnce(&mut Session) -> R) -> R {
        f(&mut self.borrow_mut())
    }
}

impl SessionCell for RefCell<&mut Session> {
    fn with<R>(&self, f: impl FnOnce(&mut Session) -> R) -> R {
        f(&mut self.borrow_mut())
    }
}

/// Where the parts of a split step run besides the session's trainer: the
/// page's helper Web Workers (`helpers`), each with a `Replica` of the model.
/// Natively there are none (`NoHelpers`); tests use replicas in process.
///
/// A split step's chunks are shared out as they go (`train::parallel`): each
/// helper goes through its job's chunks saying which it begins (`started`),
/// and the training worker, coming up from the first, takes those no helper
/// has begun and says so (`claim`), so that the helpers stop short of them.
pub trait Helpers {
    /// Helpers to take parts of the next step or evaluation (0: it is not
    /// split), once
    /// those starting are ready (so that a run's measured steps are split as
    /// `split::SplitTuner` asks, not as the helpers happen to have started).
    /// May start or stop helpers to match what was asked: no part is out
    /// when it runs.
    fn ready(&self) -> impl std::future::Future<Output = usize>;
    /// Sends `job`, a part of a step of `spec`'s model or of an evaluation
    /// (`PartJob::evaluate`), to helper `k`.
    fn send(&self, k: usize, spec: &ModelSpec, job: PartJob);
    /// Whether a helper has begun chunk `index` of the step out (it will be
    /// in its results), as far as this worker has heard.
    fn started(&self, index: usize) -> bool;
    /// Tells the helpers that this worker takes chunk `index` of the step out.
    fn claim(&self, index: usize);
    /// Lets the helpers' word in (in the page, a turn of the worker's event
    /// loop), between two chunks of this worker's.
    fn settle(&self) -> impl std::future::Future<Output = ()>;
    /// Helper `k`'s results for the job sent to it last (a result per chunk
    /// it computed), or why the helper failed (it is not used again).
    fn receive(&self, k: usize) -> impl std::future::Future<Output = Result<Vec<PartResult>, String>>;
}

/// No helpers: every step trains in the session's own thread.
pub struct NoHelpers;

impl Helpers for NoHelpers {
    async fn ready(&self) -> usize {
        0
    }
    fn send(&self, _: usize, _: &ModelSpec, _: PartJob) {
        unreachable!("no helper was ready")
    }
    fn started(&self, _: usize) -> bool {
        false
    }
    fn claim(&self, _: usize) {}
    async fn settle(&self) {}
    async fn receive(&self, _: usize) -> Result<Vec<PartResult>, String> {
        unreachable!("no helper was ready")
    }
}

/// A step begun by `begin_slice_step`: whole, or split across helpers (the
/// jobs to send them, and the spec of the model they belong to).
// One lives for one step, moved once: the sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub(super) enum Begun {
    Whole(PendingStep),
    Split(SplitStep, Vec<PartJob>, ModelSpec),
}

/// Trains one slice on the session's device (first measuring where Auto has
/// not measured the model, `device::measure_auto`): up to `max_steps` steps (or while
/// running) for about `budget_s` seconds, each step begun, its metrics awaited
/// (ready at once on the CPU) and completed; a GPU run's CPU copy refreshed
/// when due; then the slice's events. `on_begun` runs after each step is
/// recorded (the page's tests simulate a lost GPU there). On the CPU, with
/// `helpers` ready, each step's batch is split into chunks that they and this
/// thread take as they go (`Helpers`).
pub async fn train_slice(
    cell: &impl SessionCell,
    helpers: &impl Helpers,
    max_steps: usize,
    budget_s: f64,
    mut on_begun: impl FnMut(&Session),
) -> Vec<Event> {
    // Auto measures both backends on a model (or batch size) it has not measured.
    let measured = if cell.with(|s| s.needs_measuring()) { super::device::measure_auto(cell).await } else { vec![] };
    let Some(mut slice) = cell.with(|s| s.slice_start(max_steps, budget_s)) else { return measured };
    slice.events = measured;
    loop {
        let ready = match cell.with(|s| s.may_split(&slice)) {
            true => helpers.ready().await,
            false => 0,
        };
        let started = web_time::Instant::now();
        let Some((generation, begun)) = cell.with(|s| s.begin_slice_step(&slice, ready)) else { break };
        let split = matches!(begun, Begun::Split(..));
        let pending = match begun {
            Begun::Whole(pending) => pending,
            Begun::Split(mut split, jobs, spec) => {
                let sent = jobs.len();
                for (k, job) in jobs.into_iter().enumerate() {
                    helpers.send(k, &spec, job);
                }
                // This worker's chunks: from the first up, while no helper has
                // begun the next (the helpers' word comes in between two).
                while let Some(index) = split.next_own(|c| !helpers.started(c)) {
                    helpers.claim(index);
                    if !cell.with(|s| s.train_chunk(generation, &mut split, index)) {
                        break;
                    }
                    helpers.settle().await;
                }
                let parts = receive_all(helpers, sent).await;
                match cell.with(|s| s.finish_split(&mut slice, generation, split, parts)) {
                    Some(pending) => pending,
                    None => continue,
                }
            }
        };
        cell.with(|s| on_begun(s));
        let words = pending.read().await;
        // The step's time, before an evaluation that may fall due with it.
        let took = started.elapsed();
        let sync_due = cell.with(|s| {
            let due = s.finish_slice_step(&mut slice, generation, pending, words);
            s.step_timed(&mut slice, generation, split, took);
            due
        });
        if sync_due {
            let events = sync(cell).await;
            slice.events.extend(events);
            cell.with(|s| s.slice_synced(&mut slice));
        } else if std::mem::take(&mut slice.evaluate_now) {
            evaluation_after_step(cell, helpers, &mut slice).await;
        }
    }
    cell.with(|s| s.slice_end(slice))
}

/// The evaluation every `EVAL_EVERY` steps of a run on the CPU: where its
/// steps are split across helpers (`SplitTuner` chose so), so is the
/// evaluation, each worker computing the logits of its share of the test
/// examples (the training worker alone took 6 % of a split Seed CNN step
/// for it, the helpers idle); else in this worker alone (`slice_synced`).
async fn evaluation_after_step(cell: &impl SessionCell, helpers: &impl Helpers, slice: &mut Slice) {
    let started = Instant::now();
    if !cell.with(|s| s.split_chosen()) {
        cell.with(|s| s.slice_synced(slice));
        return;
    }
    // From here until it is done, a Pause leaves the evaluating to this.
    cell.with(|s| s.evaluation_out = true);
    let ready = helpers.ready().await;
    let Some((generation, own, jobs, spec)) = cell.with(|s| s.begin_split_evaluation(ready)) else {
        cell.with(|s| {
            s.evaluation_out = false;
            s.slice_synced(slice);
        });
        return;
    };
    let sent = jobs.len();
    for (k, job) in jobs.into_iter().enumerate() {
        helpers.send(k, &spec, job);
    }
    let own = cell.with(|s| s.own_evaluation_part(generation, own));
    let parts = receive_all(helpers, sent).await;
    cell.with(|s| s.finish_split_evaluation(slice, generation, own, parts, started));
}

/// The results of the first `sent` helpers, in order, or the first failure.
/// Every answer is awaited, even after a failure, so that none is left out
/// to be taken for the next job's.
async fn receive_all(helpers: &impl Helpers, sent: usize) -> Result<Vec<PartResult>, String> {
    let mut parts = Ok(Vec::with_capacity(sent));
    for k in 0..sent {
        match (helpers.receive(k).await, &mut parts) {
            (Ok(part), Ok(parts)) => parts.extend(part),
            (Err(e), Ok(_)) => parts = Err(e),
            (_, Err(_)) => {}
        }
    }
    parts
}

/// Brings the CPU copy of a GPU run up to date (one readback); if the GPU
/// fails, training moves to the CPU and the events say so.
pub async fn sync(cell: &impl SessionCell) -> Vec<Event> {
    let Some((generation, checkpoint)) = cell.with(|s| s.begin_sync()) else { return vec![] };
    match checkpoint.to_host().await {
        Ok(host) => {
            cell.with(|s| s.finish_sync(generation, host));
            vec![]
        }
        Err(e) => cell.with(|s| s.fall_back(&e.0)),
    }
}

impl Session {
    /// Trains for about `budget_s` seconds while running; returns what to report
    /// (natively; the page's worker runs `train_slice` itself).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn tick(&mut self, budget_s: f64) -> Vec<Event> {
        if !self.running {
            return vec![];
        }
        self.run_steps(usize::MAX, budget_s)
    }

    /// `train_slice`, waiting for the device (natively).
    #[cfg(not(target_arch = "wasm32"))]
    pub(super) fn run_steps(&mut self, max_steps: usize, budget_s: f64) -> Vec<Event> {
        pollster::block_on(train_slice(&RefCell::new(self), &NoHelpers, max_steps, budget_s, |_| {}))
    }

    /// Brings a GPU run's CPU copy up to date, waiting for the GPU (natively).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn sync_blocking(&mut self) -> Vec<Event> {
        pollster::block_on(sync(&RefCell::new(self)))
    }

    /// Starts a slice of training.
    fn slice_start(&mut self, max_steps: usize, budget_s: f64) -> Option<Slice> {
        let t = self.trainer.as_ref()?;
        Some(Slice {
            run: self.run,
            first_step: t.steps_done() + 1,
            samples_before: t.samples_seen(),
            started: Instant::now(),
            max_steps,
            budget_s,
            losses: Vec::new(),
            eval_s: 0.0,
            evaluate_now: false,
            last: None,
            events: Vec::new(),
            stop: false,
        })
    }

    /// Every step of the run's epochs (at most `MAX_EPOCHS`, checked by the spec;
    /// saturating all the same, never wrapping to a short run).
    fn total_steps(t: &Trainer) -> usize {
        t.steps_per_epoch().saturating_mul(t.model.spec.training.epochs)
    }

    /// Whether the slice should take another step.
    fn slice_wants_step(&self, slice: &Slice) -> bool {
        let Some(t) = self.trainer.as_ref() else { return false };
        !slice.stop
            && slice.losses.len() < slice.max_steps
            && t.steps_done() < Self::total_steps(t)
            && (slice.losses.is_empty() || slice.started.elapsed().as_secs_f64() < slice.budget_s)
    }

    /// For a `Step` on the GPU (which the page's worker runs itself): the trainer
    /// made if need be, and training paused.
    pub fn prepare_step(&mut self) -> Vec<Event> {
        match self.ensure_trainer() {
            Ok(()) => {
                self.running = false;
                vec![Event::Running { running: false }]
            }
            Err(message) => vec![Event::Error { message }],
        }
    }

    /// Whether the slice's next step, if it takes one, may be split across
    /// helpers (a run on the CPU).
    fn may_split(&self, slice: &Slice) -> bool {
        (self.running || slice.max_steps == 1)
            && self.slice_wants_step(slice)
            && self.trainer.as_ref().is_some_and(|t| !t.device().is_gpu())
    }

    /// Begins the slice's next step if it wants one, with the generation it
    /// belongs to: split across the trainer and `helpers` helpers where there
    /// are any and the run is on the CPU (`Trainer::split_step`), whole
    /// otherwise (`Trainer::begin_step`).
    fn begin_slice_step(&mut self, slice: &Slice, helpers: usize) -> Option<(u64, Begun)> {
        if !(self.running || slice.max_steps == 1) || !self.slice_wants_step(slice) {
            return None;
        }
        let generation = self.generation;
        let parts = if self.split.split_next(generation, helpers) { helpers + 1 } else { 1 };
        let t = self.trainer.as_mut()?;
        match t.split_step(parts) {
            Some((split, jobs)) => {
                let spec = t.model.spec.clone();
                self.split_out = true;
                Some((generation, Begun::Split(split, jobs, spec)))
            }
            None => Some((generation, Begun::Whole(t.begin_step()))),
        }
    }

    /// Chunk `index` of a split step, in this worker (`Trainer::train_chunk`);
    /// false, with nothing done, when the trainer was replaced meanwhile
    /// (`finish_split` drops the step).
    fn train_chunk(&mut self, generation: u64, split: &mut SplitStep, index: usize) -> bool {
        match self.trainer.as_mut().filter(|_| generation == self.generation) {
            Some(t) => {
                t.train_chunk(split, index);
                true
            }
            None => false,
        }
    }

    /// Times a CPU step for `SplitTuner` (whether splitting pays), and says
    /// what it measured once it has.
    fn step_timed(&mut self, slice: &mut Slice, generation: u64, split: bool, time: web_time::Duration) {
        let Some(t) = self.trainer.as_ref().filter(|t| !t.device().is_gpu() && generation == self.generation) else {
            return;
        };
        let rows = t.model.spec.training.batch_size.min(t.train_set().len());
        if let Some(m) = self.split.record(generation, split, time, rows) {
            slice.events.push(Event::WorkerSpeeds { workers: m.workers, one: m.one, split: m.split, using: m.using });
        }
    }

    /// Completes a split step with its helpers' results (`Trainer::finish_split`).
    /// `None` when the step is dropped: the trainer was replaced meanwhile (the
    /// slice ends), or a helper failed (the next step takes the same batch in
    /// this worker alone; the helpers' glue says why).
    fn finish_split(
        &mut self,
        slice: &mut Slice,
        generation: u64,
        split: SplitStep,
        parts: Result<Vec<PartResult>, String>,
    ) -> Option<PendingStep> {
        self.split_out = false;
        if generation != self.generation {
            slice.stop = true;
            return None;
        }
        let t = self.trainer.as_mut()?;
        parts.ok().map(|parts| t.finish_split(split, parts))
    }

    /// Completes a step begun by `begin_slice_step` with its metrics (or the
    /// reason the readback failed). Returns whether a sync is due (see
    /// `slice_step`); a step of an older generation is dropped.
    fn finish_slice_step(
        &mut self,
        slice: &mut Slice,
        generation: u64,
        pending: crate::train::PendingStep,
        words: Result<[u32; 3], crate::backend::GpuError>,
    ) -> bool {
        if generation != self.generation {
            slice.stop = true;
            return false;
        }
        let t = self.trainer.as_mut().expect("a trainer of this generation");
        let r = match words {
            Ok(w) => t.finish_step(pending, w),
            Err(e) => Err(Error::Gpu(e.0)),
        };
        self.slice_step(slice, r)
    }

    /// Records a step's outcome. Returns true when the CPU copy of a GPU run is
    /// due for a refresh (every `SYNC_EVERY` steps, before an evaluation, at the
    /// end); call `slice_synced` after it. A run on the CPU marks the slice
    /// `evaluate_now` when an evaluation is due (`evaluation_after_step`).
    fn slice_step(&mut self, slice: &mut Slice, r: crate::Result<crate::train::StepMetrics>) -> bool {
        match r {
            Ok(m) => {
                slice.losses.push(m.loss);
                // The run's history (after a move to the CPU it may go back a few steps).
                self.history.losses.truncate(m.step.saturating_sub(1));
                self.history.losses.push(m.loss);
                let step = m.step;
                let lr = self.trainer.as_ref().map_or(0.0, |t| t.optimizer.lr());
                if let Some(message) = self.watch.on_step(m.loss, lr) {
                    self.not_learning(slice, message);
                }
                slice.last = Some(m);
                let t = self.trainer.as_ref().expect("a trainer");
                let done = step >= Self::total_steps(t);
                if !t.device().is_gpu() {
                    // The evaluation, if due, follows (`evaluation_after_step`).
                    slice.evaluate_now = self.evaluation_due(slice);
                    return false;
                }
                step % SYNC_EVERY == 0 || step % EVAL_EVERY == 0 || done
            }
            Err(Error::Gpu(reason)) => {
                // The slice ends here: the run may go back to its last checkpoint.
                let ev = self.fall_back(&reason);
                slice.events.extend(ev);
                slice.stop = true;
                false
            }
            Err(e @ Error::NonFiniteLoss { .. }) => {
                self.running = false;
                slice.stop = true;
                slice.events.push(Event::Diverged { message: e.to_string() });
                slice.events.push(Event::Running { running: false });
                false
            }
            Err(e) => {
                self.running = false;
                slice.stop = true;
                slice.events.push(Event::Error { message: e.to_string() });
                slice.events.push(Event::Running { running: false });
                false
            }
        }
    }

    /// After the step (and, for a GPU run, the refresh of its CPU copy): the
    /// evaluation every `EVAL_EVERY` steps, in this worker.
    fn slice_synced(&mut self, slice: &mut Slice) {
        if self.evaluation_due(slice) {
            let started = Instant::now();
            let ev = self.evaluation(Some(QUICK_EVAL_SAMPLES));
            self.slice_evaluated(slice, ev, started);
        }
    }

    /// Whether the slice's last step is one that the run evaluates after
    /// (every `EVAL_EVERY` steps, but the last: the run's end evaluates it all).
    fn evaluation_due(&self, slice: &Slice) -> bool {
        let (Some(step), Some(t)) = (slice.last.as_ref().map(|m| m.step), self.trainer.as_ref()) else { return false };
        step % EVAL_EVERY == 0 && t.steps_done() == step && step < Self::total_steps(t)
    }

    /// Records an evaluation of the slice begun at `started`: its time, its
    /// event, and a pause if it diverged or found the run at the chance level.
    fn slice_evaluated(&mut self, slice: &mut Slice, ev: Event, started: Instant) {
        slice.eval_s += started.elapsed().as_secs_f64();
        let diverged = matches!(ev, Event::Diverged { .. });
        let at_chance = self.judge(&ev);
        slice.events.push(ev);
        if diverged {
            // Paused: no further step in this slice.
            slice.stop = true;
            slice.events.push(Event::Running { running: false });
        } else if let Some(message) = at_chance {
            self.not_learning(slice, message);
        }
    }

    /// Whether this run's steps are split across the helpers (measured so).
    fn split_chosen(&self) -> bool {
        self.split.chosen_split(self.generation)
    }

    /// Begins the evaluation due, split across `helpers` helpers and this
    /// worker, on the CPU: the test examples this worker takes, and the jobs
    /// for the helpers (`Trainer::evaluation_parts`). `None` when it is not
    /// split: no helpers, steps not split, a GPU run, or too few examples.
    fn begin_split_evaluation(
        &mut self,
        helpers: usize,
    ) -> Option<(u64, std::ops::Range<usize>, Vec<PartJob>, ModelSpec)> {
        if helpers == 0 || !self.split_chosen() {
            return None;
        }
        let t = self.trainer.as_ref().filter(|t| !t.device().is_gpu())?;
        let (own, jobs) = t.evaluation_parts(QUICK_EVAL_SAMPLES, helpers + 1)?;
        Some((self.generation, own, jobs, t.model.spec.clone()))
    }

    /// The logits of this worker's share of a split evaluation (none when the
    /// run was replaced meanwhile: `finish_split_evaluation` drops it).
    fn own_evaluation_part(&self, generation: u64, rows: std::ops::Range<usize>) -> Vec<f32> {
        match self.trainer.as_ref().filter(|_| generation == self.generation) {
            Some(t) => crate::train::eval_logits(&t.model, t.test_set(), rows),
            None => Vec::new(),
        }
    }

    /// Completes a split evaluation begun at `started` with the helpers'
    /// logits: the figures over all the parts, as one worker would have
    /// computed them. A helper that failed, or sent logits of another length,
    /// leaves it to this worker (the helpers' glue says why a helper failed),
    /// and so does a move of the run to another device meanwhile; a run
    /// replaced meanwhile ends the slice.
    fn finish_split_evaluation(
        &mut self,
        slice: &mut Slice,
        generation: u64,
        own: Vec<f32>,
        parts: Result<Vec<PartResult>, String>,
        started: Instant,
    ) {
        self.evaluation_out = false;
        if slice.run != self.run {
            slice.stop = true;
            return;
        }
        let Some(t) = self.trainer.as_ref() else { return };
        let n = QUICK_EVAL_SAMPLES.min(t.test_set().len());
        let logits: Vec<f32> = match parts {
            Ok(parts) if generation == self.generation => {
                own.into_iter().chain(parts.into_iter().flat_map(|p| p.values)).collect()
            }
            _ => Vec::new(),
        };
        if logits.len() != n * t.model.info.output_shape.iter().product::<usize>() {
            self.slice_synced(slice);
            return;
        }
        let e = crate::train::eval_metrics(&t.model, t.test_set(), n, &logits);
        let ev = self.evaluation_event(e);
        self.slice_evaluated(slice, ev, started);
    }

    /// Whether an evaluation finds the run at the chance level (see `RunWatch`).
    fn judge(&mut self, ev: &Event) -> Option<String> {
        let (Event::Evaluation { step, accuracy, .. }, Some(t)) = (ev, self.trainer.as_ref()) else { return None };
        let (classes, lr) = (t.model.spec.input.classes(), t.optimizer.lr());
        self.watch.on_evaluation(*step, *accuracy, classes, lr)
    }

    /// Pauses a run that is not learning, saying why.
    fn not_learning(&mut self, slice: &mut Slice, message: String) {
        self.running = false;
        slice.stop = true;
        slice.events.push(Event::NotLearning { message });
        slice.events.push(Event::Running { running: false });
    }

    /// Ends a slice: its metrics, and the final evaluation when training is done.
    /// A slice whose run was replaced meanwhile (a split step's parts were out,
    /// or a GPU step's readback, when the page's worker handled `NewRun`)
    /// reports nothing of it: the page shows the new run already.
    fn slice_end(&mut self, slice: Slice) -> Vec<Event> {
        if slice.run != self.run {
            return slice.events.into_iter().filter(|e| !e.of_run()).collect();
        }
        // A Pause that came while a split step was out (see `Session::eval_after_step`).
        let evaluate_paused = std::mem::take(&mut self.eval_after_step);
        let Some(trainer) = self.trainer.as_ref() else { return slice.events };
        let total_steps = Self::total_steps(trainer);
        let mut events = slice.events;
        let spent = slice.started.elapsed().as_secs_f64();
        self.elapsed_s += spent;
        if let Some(m) = slice.last {
            let train_s = (spent - slice.eval_s).max(1e-9);
            let samples_per_s = (trainer.samples_seen().saturating_sub(slice.samples_before)) as f64 / train_s;
            let (samples_per_s, train_s) = (samples_per_s as f32, train_s as f32);
            events.insert(
                0,
                Event::Metrics {
                    first_step: slice.first_step,
                    losses: slice.losses,
                    accuracy: m.accuracy,
                    samples_per_s,
                    train_s,
                    epoch: m.epoch,
                    epoch_progress: m.epoch_progress,
                    elapsed_s: self.elapsed_s as f32,
                    total_steps,
                },
            );
        }
        let steps = trainer.steps_done();
        if evaluate_paused && steps > 0 {
            events.push(self.evaluation(Some(QUICK_EVAL_SAMPLES)));
        }
        if steps >= total_steps && self.running {
            let ev = self.evaluation(None);
            // A final evaluation that diverged says so; the run is not "finished".
            let diverged = matches!(ev, Event::Diverged { .. });
            let at_chance = self.judge(&ev);
            events.push(ev);
            if !diverged {
                events.push(Event::Finished { steps });
            }
            // A run that ends at the chance level has not learned: it says so.
            events.extend(at_chance.map(|message| Event::NotLearning { message }));
            self.running = false;
            events.push(Event::Running { running: false });
        }
        events
    }
}
