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
use crate::train::Trainer;

/// What one slice of training collected (see `Session::slice_start`).
pub(super) struct Slice {
    first_step: usize,
    samples_before: usize,
    started: Instant,
    max_steps: usize,
    budget_s: f64,
    losses: Vec<f32>,
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

/// Trains one slice on the session's device (first measuring where Auto has
/// not measured the model, `device::measure_auto`): up to `max_steps` steps (or while
/// running) for about `budget_s` seconds, each step begun, its metrics awaited
/// (ready at once on the CPU) and completed; a GPU run's CPU copy refreshed
/// when due; then the slice's events. `on_begun` runs after each step is
/// recorded (the page's tests simulate a lost GPU there).
pub async fn train_slice(
    cell: &impl SessionCell,
    max_steps: usize,
    budget_s: f64,
    mut on_begun: impl FnMut(&Session),
) -> Vec<Event> {
    // Auto measures both backends on a model (or batch size) it has not measured.
    let measured = if cell.with(|s| s.needs_measuring()) { super::device::measure_auto(cell).await } else { vec![] };
    let Some(mut slice) = cell.with(|s| s.slice_start(max_steps, budget_s)) else { return measured };
    slice.events = measured;
    while let Some((generation, pending)) = cell.with(|s| s.begin_slice_step(&slice)) {
        cell.with(|s| on_begun(s));
        let words = pending.read().await;
        if cell.with(|s| s.finish_slice_step(&mut slice, generation, pending, words)) {
            let events = sync(cell).await;
            slice.events.extend(events);
            cell.with(|s| s.slice_synced(&mut slice));
        }
    }
    cell.with(|s| s.slice_end(slice))
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
        pollster::block_on(train_slice(&RefCell::new(self), max_steps, budget_s, |_| {}))
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
            first_step: t.steps_done() + 1,
            samples_before: t.samples_seen(),
            started: Instant::now(),
            max_steps,
            budget_s,
            losses: Vec::new(),
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

    /// Begins the slice's next step if it wants one (see `Trainer::begin_step`),
    /// with the generation it belongs to.
    fn begin_slice_step(&mut self, slice: &Slice) -> Option<(u64, crate::train::PendingStep)> {
        if !(self.running || slice.max_steps == 1) || !self.slice_wants_step(slice) {
            return None;
        }
        let generation = self.generation;
        Some((generation, self.trainer.as_mut()?.begin_step()))
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
    /// end); call `slice_synced` after it.
    fn slice_step(&mut self, slice: &mut Slice, r: crate::Result<crate::train::StepMetrics>) -> bool {
        match r {
            Ok(m) => {
                slice.losses.push(m.loss);
                let step = m.step;
                let lr = self.trainer.as_ref().map_or(0.0, |t| t.optimizer.lr());
                if let Some(message) = self.watch.on_step(m.loss, lr) {
                    self.not_learning(slice, message);
                }
                slice.last = Some(m);
                let t = self.trainer.as_ref().expect("a trainer");
                let done = step >= Self::total_steps(t);
                if !t.device().is_gpu() {
                    self.slice_synced(slice);
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
    /// evaluation every `EVAL_EVERY` steps.
    fn slice_synced(&mut self, slice: &mut Slice) {
        let Some(step) = slice.last.as_ref().map(|m| m.step) else { return };
        let Some(t) = self.trainer.as_ref() else { return };
        if step % EVAL_EVERY == 0 && t.steps_done() == step && step < Self::total_steps(t) {
            let ev = self.evaluation(Some(QUICK_EVAL_SAMPLES));
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
    fn slice_end(&mut self, slice: Slice) -> Vec<Event> {
        let Some(trainer) = self.trainer.as_ref() else { return slice.events };
        let total_steps = Self::total_steps(trainer);
        let mut events = slice.events;
        let spent = slice.started.elapsed().as_secs_f64();
        self.elapsed_s += spent;
        if let Some(m) = slice.last {
            let samples_per_s =
                ((trainer.samples_seen().saturating_sub(slice.samples_before)) as f64 / spent.max(1e-9)) as f32;
            events.insert(
                0,
                Event::Metrics {
                    first_step: slice.first_step,
                    losses: slice.losses,
                    accuracy: m.accuracy,
                    samples_per_s,
                    epoch: m.epoch,
                    epoch_progress: m.epoch_progress,
                    elapsed_s: self.elapsed_s as f32,
                },
            );
        }
        let steps = trainer.steps_done();
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
