//! Data-parallel training in the page: the training worker starts helper Web
//! Workers (the same script, named `HELPER_NAME`), and each step on the CPU
//! sends every helper its chunks of the batch with the weights (`PartJob`);
//! the helper's `Replica` sends back the gradients of those it computed
//! (`PartResult`), which the trainer sums with its own chunks'
//! (`Trainer::finish_split`), as the CLI's `--threads` does with threads.
//! The workers share no memory, so they share the chunks out by messages: a
//! helper says which chunk it begins, the training worker which it takes,
//! and each looks at the other's word between two chunks (a turn of its
//! event loop, `Turns`); a chunk both began at once is computed twice and
//! counted once.
//!
//! Messages are JS objects: the numbers travel as `Float32Array`s whose
//! buffers are transferred, not copied; the rest as JSON text.
//! - to a helper: `{spec}` when its model changes, `{job, weights, x}` per
//!   step (and per evaluation, when `job` says `evaluate`), `{claim}` for a
//!   chunk of its job the training worker takes;
//! - from a helper: `"ready"` once started, `{started}` as it begins a chunk,
//!   `{result, values}` per job (`PartResult::values` of each chunk computed,
//!   one after another: the gradients of a step's chunks, the logits of an
//!   evaluation's part), or `{error}` when a job does not fit its model.
//!
//! A helper that fails (an error event, a job it cannot run) stops them all:
//! the step is taken again in the training worker alone, and `Workers` says
//! why. A browser whose workers cannot start workers trains in one.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::sync::Arc;

use js_sys::{Array, Float32Array, Function, Object, Promise, Reflect};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent, Worker};

use super::protocol::{spawn_worker, Event, HELPER_NAME, MAX_WORKERS};
use super::slice::Helpers;
use crate::nn::ModelSpec;
use crate::train::{Chunk, PartJob, PartResult, Replica};

/// A job's small fields (its numbers travel as arrays).
#[derive(Serialize, Deserialize)]
struct JobMeta {
    shape: Vec<usize>,
    labels: Vec<usize>,
    /// `Chunk`s as `[index, first row, end row, seed]`.
    chunks: Vec<(usize, usize, usize, u64)>,
    /// A part of an evaluation (`PartJob::evaluate`).
    #[serde(default)]
    evaluate: bool,
}

/// A chunk's result's small fields; the loss as its bits, since a diverging
/// chunk's NaN has no JSON form.
#[derive(Serialize, Deserialize)]
struct PartMeta {
    chunk: usize,
    reached: Vec<bool>,
    loss_bits: u32,
    correct: u32,
}

/// A job's results' small fields (their values travel together as one array).
#[derive(Serialize, Deserialize)]
struct ResultMeta {
    parts: Vec<PartMeta>,
}

/// Turns of this worker's event loop: `next` returns after a task of its own,
/// so that the messages that came before it are handled (Chromium runs a
/// worker's posted messages in the order they came, though HTML does not
/// promise it across ports: a word read a turn late costs a chunk computed
/// twice at most). A message to itself through a
/// `MessageChannel`, not a timer (a timer set from a timer's task, five
/// deep, waits at least 4 ms: HTML's timer nesting clamp).
pub(super) struct Turns {
    channel: Option<web_sys::MessageChannel>,
    resolve: Rc<RefCell<Option<Function>>>,
    scope: DedicatedWorkerGlobalScope,
}

impl Turns {
    pub(super) fn new(scope: DedicatedWorkerGlobalScope) -> Turns {
        let resolve: Rc<RefCell<Option<Function>>> = Rc::default();
        let channel = web_sys::MessageChannel::new().ok();
        if let Some(channel) = &channel {
            let waiting = resolve.clone();
            let on_turn = Closure::<dyn Fn(MessageEvent)>::new(move |_: MessageEvent| {
                if let Some(resolve) = waiting.borrow_mut().take() {
                    let _ = resolve.call0(&JsValue::NULL);
                }
            });
            channel.port1().set_onmessage(Some(on_turn.as_ref().unchecked_ref()));
            on_turn.forget();
        }
        Turns { channel, resolve, scope }
    }

    /// The next turn (one at a time).
    pub(super) async fn next(&self) {
        let (channel, waiting, scope) = (&self.channel, &self.resolve, &self.scope);
        let turn = Promise::new(&mut |resolve, _| {
            let posted = channel.as_ref().is_some_and(|c| c.port2().post_message(&JsValue::NULL).is_ok());
            match posted {
                true => *waiting.borrow_mut() = Some(resolve),
                false => drop(scope.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, 0)),
            }
        });
        let _ = wasm_bindgen_futures::JsFuture::from(turn).await;
    }
}

fn get(obj: &JsValue, key: &str) -> Option<JsValue> {
    Reflect::get(obj, &JsValue::from_str(key)).ok().filter(|v| !v.is_undefined())
}

fn object(fields: &[(&str, &JsValue)]) -> Object {
    let obj = Object::new();
    for (k, v) in fields {
        let _ = Reflect::set(&obj, &JsValue::from_str(k), v);
    }
    obj
}

fn floats(values: &[f32]) -> Float32Array {
    Float32Array::from(values)
}

/// One helper worker, seen from the training worker.
struct Helper {
    worker: Worker,
    /// It said "ready" (its message handler is installed).
    ready: Cell<bool>,
    /// The model its replica has.
    spec: RefCell<Option<ModelSpec>>,
    /// The answer to the job out, and its resolve function, which the
    /// message handler takes to answer it.
    answer: RefCell<Option<Promise>>,
    resolve: RefCell<Option<Function>>,
    /// The chunks of the job out (bits by `Chunk::index`), and those of them
    /// it said it began.
    queue: Cell<u64>,
    started: Cell<u64>,
}

impl Drop for Helper {
    fn drop(&mut self) {
        self.worker.terminate();
    }
}

/// The training worker's helpers (`Helpers` for `train_slice`).
pub(super) struct WebHelpers {
    scope: DedicatedWorkerGlobalScope,
    me: Weak<WebHelpers>,
    /// The page's folder, from `LoadData` (helpers load the script from it).
    base: RefCell<Option<String>>,
    /// Workers asked for in all, this one included.
    wanted: Cell<usize>,
    /// Why fewer run than asked (set when the browser cannot start them, or
    /// one failed; cleared by the next `SetWorkers`).
    note: RefCell<Option<String>>,
    helpers: RefCell<Vec<Rc<Helper>>>,
    /// The helpers of the step under way (`ready` picks them; `send` and
    /// `receive` count among them).
    round: RefCell<Vec<Rc<Helper>>>,
    /// Jobs sent and not yet received: helpers are started or stopped only
    /// when none is out.
    out: Cell<usize>,
    /// When the step's parts must all be back (`ANSWER_S` after the first
    /// was sent), so helpers that hang hold a step that long, not that long each.
    deadline: Cell<f64>,
    /// The last `Workers` event sent.
    reported: RefCell<Option<Event>>,
    /// For tests (`SetWorkers` `simulate` `fail:N`): the helper given the
    /// N-th part from now fails (an uncaught error in it) as it gets it.
    fail_at: Cell<Option<usize>>,
    turns: Turns,
}

impl WebHelpers {
    pub(super) fn new(scope: DedicatedWorkerGlobalScope) -> Rc<WebHelpers> {
        Rc::new_cyclic(|me| WebHelpers {
            scope: scope.clone(),
            me: me.clone(),
            base: RefCell::new(None),
            wanted: Cell::new(1),
            note: RefCell::new(None),
            helpers: RefCell::new(Vec::new()),
            round: RefCell::new(Vec::new()),
            out: Cell::new(0),
            deadline: Cell::new(0.0),
            reported: RefCell::new(None),
            fail_at: Cell::new(None),
            turns: Turns::new(scope.clone()),
        })
    }

    /// The page's folder is known (`LoadData`): helpers can start.
    pub(super) fn set_base(&self, base: &str) {
        *self.base.borrow_mut() = Some(base.to_string());
        self.reconcile();
    }

    /// `SetWorkers`: `workers` in all (1 to `MAX_WORKERS`). `simulate`
    /// `unavailable` acts as a browser whose workers cannot start workers;
    /// `fail:N` makes the helper given the N-th part from now fail.
    pub(super) fn set_wanted(&self, workers: usize, simulate: Option<&str>) {
        self.wanted.set(workers.clamp(1, MAX_WORKERS));
        self.fail_at.set(simulate.and_then(|s| s.strip_prefix("fail:")).and_then(|n| n.parse().ok()));
        *self.note.borrow_mut() = None;
        let nested = Reflect::has(&js_sys::global(), &JsValue::from_str("Worker")).unwrap_or(false);
        if workers > 1 && (simulate == Some("unavailable") || !nested) {
            self.stop_all("this browser cannot start workers from a worker, so training runs in one worker".into());
        }
        self.reconcile();
    }

    /// Stops every helper and says why (training goes on in one worker).
    fn stop_all(&self, why: String) {
        *self.note.borrow_mut() = Some(why);
        if self.out.get() == 0 {
            self.helpers.borrow_mut().clear();
            self.round.borrow_mut().clear();
        }
        self.report();
    }

    /// Starts or stops helpers to match what was asked, when no job is out.
    fn reconcile(&self) {
        if self.out.get() > 0 {
            return;
        }
        let want = if self.note.borrow().is_some() { 0 } else { self.wanted.get() - 1 };
        self.helpers.borrow_mut().truncate(want);
        let base = self.base.borrow().clone();
        while let Some(base) = base.as_deref().filter(|_| self.helpers.borrow().len() < want) {
            match self.spawn(base) {
                Ok(h) => self.helpers.borrow_mut().push(h),
                Err(e) => {
                    let why =
                        format!("a helper worker could not start ({}), so training runs in one worker", describe(&e));
                    *self.note.borrow_mut() = Some(why);
                    self.helpers.borrow_mut().clear();
                    break;
                }
            }
        }
        self.report();
    }

    fn spawn(&self, base: &str) -> Result<Rc<Helper>, JsValue> {
        let worker = spawn_worker(base, HELPER_NAME)?;
        let helper = Rc::new_cyclic(|me: &Weak<Helper>| {
            let (me_msg, me_err, pool_msg, pool_err) = (me.clone(), me.clone(), self.me.clone(), self.me.clone());
            let on_message = Closure::<dyn Fn(MessageEvent)>::new(move |msg: MessageEvent| {
                let (Some(helper), Some(pool)) = (me_msg.upgrade(), pool_msg.upgrade()) else { return };
                let data = msg.data();
                if data.as_string().as_deref() == Some("ready") {
                    helper.ready.set(true);
                    pool.report();
                } else if let Some(index) = get(&data, "started").and_then(|i| i.as_f64()) {
                    if (0.0..64.0).contains(&index) {
                        helper.started.set(helper.started.get() | 1 << index as u32);
                    }
                } else if let Some(resolve) = helper.resolve.borrow_mut().take() {
                    let _ = resolve.call1(&JsValue::NULL, &data);
                }
            });
            let on_error = Closure::<dyn Fn(JsValue)>::new(move |e: JsValue| {
                // Handled here: unhandled, a helper's error would be reported
                // again in this worker, and the page would take it for this
                // worker's own and say training stopped.
                if let Some(event) = e.dyn_ref::<web_sys::Event>() {
                    event.prevent_default();
                }
                let (Some(helper), Some(pool)) = (me_err.upgrade(), pool_err.upgrade()) else { return };
                let why = format!("a helper worker failed ({}); training goes on in one worker", describe(&e));
                let failed = object(&[("error", &JsValue::from_str(&why))]);
                // A job out gets the failure as its answer; the pool stops.
                let resolve = helper.resolve.borrow_mut().take();
                match resolve {
                    Some(resolve) => drop(resolve.call1(&JsValue::NULL, &failed)),
                    None => pool.stop_all(why),
                }
            });
            worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
            worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
            // An answer that cannot be read is a failure too.
            worker.set_onmessageerror(Some(on_error.as_ref().unchecked_ref()));
            // Kept by the worker object for its life (they hold no strong
            // reference): a handler may stop the helpers, and must not drop
            // itself while it runs.
            on_message.forget();
            on_error.forget();
            Helper {
                worker,
                ready: Cell::new(false),
                spec: RefCell::new(None),
                answer: RefCell::new(None),
                resolve: RefCell::new(None),
                queue: Cell::new(0),
                started: Cell::new(0),
            }
        });
        Ok(helper)
    }

    async fn sleep_ms(&self, ms: i32) {
        let scope = self.scope.clone();
        let wait = Promise::new(&mut |resolve, _| {
            let _ = scope.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
        });
        let _ = wasm_bindgen_futures::JsFuture::from(wait).await;
    }

    /// Tells the page how many workers train (when that changed).
    fn report(&self) {
        let running = 1 + self.helpers.borrow().iter().filter(|h| h.ready.get()).count();
        let event = Event::Workers { wanted: self.wanted.get(), running, note: self.note.borrow().clone() };
        if self.reported.borrow().as_ref() != Some(&event) {
            let text = serde_json::to_string(&event).expect("events serialize");
            let _ = self.scope.post_message(&JsValue::from_str(&text));
            *self.reported.borrow_mut() = Some(event);
        }
    }
}

fn describe(e: &JsValue) -> String {
    get(e, "message").and_then(|m| m.as_string()).or_else(|| e.as_string()).unwrap_or_else(|| format!("{e:?}"))
}

/// How long helpers may take to start before training goes on without them.
const START_S: f64 = 20.0;
/// How long a helper may take to answer a part before it counts as failed.
const ANSWER_S: i32 = 60;

impl Helpers for WebHelpers {
    async fn ready(&self) -> usize {
        self.reconcile();
        let started = web_time::Instant::now();
        while self.note.borrow().is_none() && self.helpers.borrow().iter().any(|h| !h.ready.get()) {
            if started.elapsed().as_secs_f64() > START_S {
                self.stop_all(format!(
                    "the helper workers did not start within {START_S} s, so training runs in one worker"
                ));
                break;
            }
            self.sleep_ms(20).await;
        }
        let round: Vec<Rc<Helper>> = match self.note.borrow().is_some() {
            true => Vec::new(),
            false => self.helpers.borrow().iter().filter(|h| h.ready.get()).cloned().collect(),
        };
        let n = round.len();
        // A helper that gets no job this time (a batch of fewer rows than
        // workers) has no chunk begun, and takes no claim.
        for helper in &round {
            helper.queue.set(0);
            helper.started.set(0);
        }
        *self.round.borrow_mut() = round;
        n
    }

    fn send(&self, k: usize, spec: &ModelSpec, job: PartJob) {
        let helper = self.round.borrow()[k].clone();
        if helper.spec.borrow().as_ref() != Some(spec) {
            let text = serde_json::to_string(spec).expect("specs serialize");
            let _ = helper.worker.post_message(&object(&[("spec", &JsValue::from_str(&text))]));
            *helper.spec.borrow_mut() = Some(spec.clone());
        }
        if let Some(n) = self.fail_at.get() {
            self.fail_at.set((n > 1).then(|| n - 1));
            if n <= 1 {
                let _ = helper.worker.post_message(&object(&[("fail", &JsValue::TRUE)]));
            }
        }
        let chunks = job.chunks.iter().map(|c| (c.index, c.rows.start, c.rows.end, c.seed)).collect();
        helper.queue.set(match job.evaluate {
            true => 0,
            false => job.chunks.iter().fold(0, |bits, c| bits | 1 << c.index),
        });
        helper.started.set(0);
        let meta = JobMeta { shape: job.shape, labels: job.labels, chunks, evaluate: job.evaluate };
        let (weights, x) = (floats(&job.weights), floats(&job.x));
        let message = object(&[
            ("job", &JsValue::from_str(&serde_json::to_string(&meta).expect("jobs serialize"))),
            ("weights", &weights),
            ("x", &x),
        ]);
        let mut resolve_fn = None;
        let promise = Promise::new(&mut |resolve, _reject| resolve_fn = Some(resolve));
        *helper.answer.borrow_mut() = Some(promise);
        *helper.resolve.borrow_mut() = resolve_fn;
        if self.out.get() == 0 {
            self.deadline.set(js_sys::Date::now() + f64::from(ANSWER_S) * 1000.0);
        }
        self.out.set(self.out.get() + 1);
        let transfer = Array::of2(&weights.buffer(), &x.buffer());
        if let Err(e) = helper.worker.post_message_with_transfer(&message, &transfer) {
            let failed =
                object(&[("error", &JsValue::from_str(&format!("a part could not be sent ({})", describe(&e))))]);
            if let Some(resolve) = helper.resolve.borrow_mut().take() {
                let _ = resolve.call1(&JsValue::NULL, &failed);
            }
        }
    }

    fn started(&self, index: usize) -> bool {
        self.round.borrow().iter().any(|h| h.started.get() >> index & 1 == 1)
    }

    fn claim(&self, index: usize) {
        for helper in self.round.borrow().iter() {
            if helper.queue.get() >> index & 1 == 1 {
                let _ = helper.worker.post_message(&object(&[("claim", &JsValue::from(index as u32))]));
            }
        }
    }

    async fn settle(&self) {
        self.turns.next().await;
    }

    async fn receive(&self, k: usize) -> Result<Vec<PartResult>, String> {
        let helper = self.round.borrow()[k].clone();
        let promise = helper.answer.borrow_mut().take();
        let answer = match promise {
            Some(p) => {
                // A helper that stops without a word must not hold the run.
                let (scope, timer) = (self.scope.clone(), Cell::new(None));
                let limit_ms = f64::from(ANSWER_S) * 1000.0;
                let left_ms = (self.deadline.get() - js_sys::Date::now()).clamp(0.0, limit_ms) as i32;
                let late = Promise::new(&mut |resolve, _| {
                    let why = object(&[("error", &JsValue::from_str(&format!("no answer within {ANSWER_S} s")))]);
                    timer
                        .set(scope.set_timeout_with_callback_and_timeout_and_arguments_1(&resolve, left_ms, &why).ok());
                });
                let first = Promise::race(&Array::of2(&p, &late));
                let answer = wasm_bindgen_futures::JsFuture::from(first).await.map_err(|e| describe(&e));
                if let Some(id) = timer.get() {
                    scope.clear_timeout_with_handle(id);
                }
                answer
            }
            None => Err("no part was sent to it".into()),
        };
        self.out.set(self.out.get().saturating_sub(1));
        if self.out.get() == 0 {
            // The round is back: a `SetWorkers` (or a failure) that came while
            // parts were out could not start or stop helpers then; it does now,
            // so a run paused mid-step reports the workers it was asked for.
            self.reconcile();
        }
        let result = answer.and_then(|answer| parse_result(&answer));
        if let Err(why) = &result {
            let why = if why.starts_with("a helper worker") {
                why.clone()
            } else {
                format!("a helper worker failed ({why}); training goes on in one worker")
            };
            self.stop_all(why);
        }
        result
    }
}

fn parse_result(answer: &JsValue) -> Result<Vec<PartResult>, String> {
    if let Some(error) = get(answer, "error") {
        return Err(error.as_string().unwrap_or_default());
    }
    let meta = get(answer, "result").and_then(|m| m.as_string()).ok_or("an unreadable answer")?;
    let meta: ResultMeta = serde_json::from_str(&meta).map_err(|e| format!("an unreadable answer: {e}"))?;
    let values = get(answer, "values").ok_or("an answer without values")?;
    let values = values.dyn_into::<Float32Array>().map_err(|_| "an answer whose values are not numbers")?;
    let (n, len) = (meta.parts.len() as u32, values.length());
    if n == 0 {
        return Ok(Vec::new());
    }
    if len % n != 0 {
        return Err(format!("an answer of {len} values for {n} chunks"));
    }
    let each = len / n;
    Ok(meta
        .parts
        .into_iter()
        .zip(0..)
        .map(|(p, k)| PartResult {
            chunk: p.chunk,
            values: values.subarray(k * each, (k + 1) * each).to_vec(),
            reached: p.reached,
            loss: f32::from_bits(p.loss_bits),
            correct: p.correct,
        })
        .collect())
}

/// A helper's state: the replica of the model it was sent, and the job it
/// goes through (counted, so that a chunk loop of an older job stops), with
/// the chunks the training worker said it takes (bits by `Chunk::index`).
#[derive(Default)]
struct HelperState {
    replica: RefCell<Option<Replica>>,
    jobs: Cell<u64>,
    claimed: Cell<u64>,
}

/// Runs this worker as a helper: a `Replica` of the model it is sent, which
/// answers every job with its chunks' gradients (or logits, for an
/// evaluation), taking a turn of its event loop before each chunk to hear
/// which the training worker takes.
pub(super) fn start_helper(scope: DedicatedWorkerGlobalScope) {
    let state = Rc::new(HelperState::default());
    let turns = Rc::new(Turns::new(scope.clone()));
    let reply_scope = scope.clone();
    let on_message = Closure::<dyn Fn(MessageEvent)>::new(move |msg: MessageEvent| {
        let data = msg.data();
        if get(&data, "fail").is_some() {
            // For tests: an error this worker does not handle, as a bug would be.
            wasm_bindgen::throw_str("a simulated failure of a helper worker");
        }
        if let Some(index) = get(&data, "claim").and_then(|i| i.as_f64()) {
            if (0.0..64.0).contains(&index) {
                state.claimed.set(state.claimed.get() | 1 << index as u32);
            }
            return;
        }
        // Whatever comes now ends the chunk loop of an older job.
        state.jobs.set(state.jobs.get() + 1);
        let answer = if let Some(spec) = get(&data, "spec").and_then(|s| s.as_string()) {
            let made = serde_json::from_str::<ModelSpec>(&spec)
                .map_err(|e| e.to_string())
                .and_then(|spec| Replica::new(&spec).map_err(|e| e.to_string()));
            match made {
                Ok(r) => {
                    *state.replica.borrow_mut() = Some(r);
                    return;
                }
                Err(e) => {
                    *state.replica.borrow_mut() = None;
                    Err(format!("the model could not be built in a helper: {e}"))
                }
            }
        } else {
            start_job(&state.replica.borrow(), &data)
        };
        match answer {
            Ok(job) if !job.evaluate => {
                state.claimed.set(0);
                let (this_job, state, turns, scope) =
                    (state.jobs.get(), state.clone(), turns.clone(), reply_scope.clone());
                wasm_bindgen_futures::spawn_local(run_chunks(state, turns, scope, job, this_job));
            }
            Ok(job) => {
                let part = state.replica.borrow().as_ref().map(|r| r.chunk(&job, 0));
                answer_with(&reply_scope, part.into_iter().collect());
            }
            Err(e) => drop(reply_scope.post_message(&object(&[("error", &JsValue::from_str(&e))]))),
        }
    });
    scope.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    let _ = scope.post_message(&JsValue::from_str("ready"));
}

/// A step's job (the `this_job`-th message): its chunks in order, each
/// after a turn of the event loop, up to the first the training worker took;
/// then the answer.
async fn run_chunks(
    state: Rc<HelperState>,
    turns: Rc<Turns>,
    scope: DedicatedWorkerGlobalScope,
    job: PartJob,
    this_job: u64,
) {
    let mut parts = Vec::with_capacity(job.chunks.len());
    for (k, chunk) in job.chunks.iter().enumerate() {
        turns.next().await;
        if state.jobs.get() != this_job {
            // A newer job came (the training worker gave up on this one).
            return;
        }
        if state.claimed.get() >> chunk.index & 1 == 1 {
            break;
        }
        let _ = scope.post_message(&object(&[("started", &JsValue::from(chunk.index as u32))]));
        let replica = state.replica.borrow();
        let Some(replica) = replica.as_ref() else { return };
        parts.push(replica.chunk(&job, k));
    }
    answer_with(&scope, parts);
}

/// Posts a job's results: `{result, values}`.
fn answer_with(scope: &DedicatedWorkerGlobalScope, parts: Vec<PartResult>) {
    let mut values = Vec::with_capacity(parts.iter().map(|p| p.values.len()).sum());
    let mut meta = ResultMeta { parts: Vec::with_capacity(parts.len()) };
    for p in parts {
        values.extend_from_slice(&p.values);
        meta.parts.push(PartMeta {
            chunk: p.chunk,
            reached: p.reached,
            loss_bits: p.loss.to_bits(),
            correct: p.correct,
        });
    }
    let meta = JsValue::from_str(&serde_json::to_string(&meta).expect("results serialize"));
    let values = floats(&values);
    let _ = scope
        .post_message_with_transfer(&object(&[("result", &meta), ("values", &values)]), &Array::of1(&values.buffer()));
}

/// Reads a job (`{job, weights, x}`) and loads its weights into the replica
/// (`Replica::start`).
fn start_job(replica: &Option<Replica>, data: &JsValue) -> Result<PartJob, String> {
    let replica = replica.as_ref().ok_or("a part came before its model")?;
    let meta = get(data, "job").and_then(|m| m.as_string()).ok_or("an unreadable message")?;
    let meta: JobMeta = serde_json::from_str(&meta).map_err(|e| format!("an unreadable part: {e}"))?;
    let (Some(weights), Some(x)) = (get(data, "weights"), get(data, "x")) else {
        return Err("a part without its numbers".into());
    };
    let numbers =
        |v: JsValue| v.dyn_into::<Float32Array>().map(|a| a.to_vec()).map_err(|_| "a part whose numbers are not f32");
    let job = PartJob {
        weights: Arc::new(numbers(weights)?),
        x: numbers(x)?,
        shape: meta.shape,
        labels: meta.labels,
        chunks: meta
            .chunks
            .into_iter()
            .map(|(index, start, end, seed)| Chunk { index, rows: start..end, seed })
            .collect(),
        claims: None,
        evaluate: meta.evaluate,
    };
    if job.chunks.is_empty() || (job.evaluate && job.chunks.len() != 1) {
        return Err(format!("a part of {} chunks", job.chunks.len()));
    }
    replica.start(&job).map_err(|e| e.to_string())?;
    Ok(job)
}
