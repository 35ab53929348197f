//! The Web Worker glue: JSON messages in and out, fetching MNIST, and a loop that
//! trains in slices of about 50 ms, yielding between them so that pause, step
//! and learning-rate messages are handled at once.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

use super::helpers::WebHelpers;
use super::slice::{sync, train_slice};
use super::{BackendChoice, Command, Event, Session};
use crate::backend::{Device, Gpu};
use crate::data::{mnist, Mnist};

/// Training time per slice before the worker yields to its message queue.
const SLICE_S: f64 = 0.05;

struct Worker {
    scope: DedicatedWorkerGlobalScope,
    session: RefCell<Session>,
    tick_scheduled: Cell<bool>,
    /// A slice of training (or a refresh of a GPU run's CPU copy) is under way.
    busy: Cell<bool>,
    /// For tests: lose the GPU device after this many more steps.
    lose_after: Cell<Option<usize>>,
    /// The helper workers that take parts of CPU steps (`SetWorkers`).
    helpers: Rc<WebHelpers>,
    /// The next slice is a message on this channel, not a `setTimeout(0)`:
    /// a timer set from a timer's task, five deep, waits at least 4 ms
    /// (HTML's timer nesting clamp), which left the worker idle for about
    /// 8 % of each 50 ms slice. (None where the channel cannot be made.)
    ticks: Option<web_sys::MessageChannel>,
}

impl Worker {
    fn post(&self, events: Vec<Event>) {
        for e in events {
            let text = serde_json::to_string(&e).expect("events serialize");
            let _ = self.scope.post_message(&JsValue::from_str(&text));
        }
    }

    fn schedule_tick(self: &Rc<Self>) {
        if self.tick_scheduled.replace(true) {
            return;
        }
        if let Some(ticks) = &self.ticks {
            if ticks.port2().post_message(&JsValue::NULL).is_ok() {
                return;
            }
        }
        let me = self.clone();
        let cb = Closure::once_into_js(move || me.tick());
        let _ = self.scope.set_timeout_with_callback_and_timeout_and_arguments_0(cb.unchecked_ref(), 0);
    }

    fn tick(self: &Rc<Self>) {
        self.tick_scheduled.set(false);
        if self.session.borrow().is_running() {
            wasm_bindgen_futures::spawn_local(slice(self.clone(), usize::MAX));
        }
    }

    fn on_message(self: &Rc<Self>, text: &str) {
        let cmd: Command = match serde_json::from_str(text) {
            Ok(c) => c,
            Err(e) => {
                return self.post(vec![Event::Error { message: format!("the worker got an unreadable message: {e}") }])
            }
        };
        if let Command::LoadData { base_url } = cmd {
            self.helpers.set_base(&base_url);
            let me = self.clone();
            wasm_bindgen_futures::spawn_local(async move {
                let events = match load_mnist(&me, &base_url).await {
                    Ok((train, test)) => me.session.borrow_mut().set_data(train, test),
                    Err(message) => vec![Event::DataFailed { message }],
                };
                me.post(events);
            });
            return;
        }
        if let Command::SetWorkers { workers, simulate } = cmd {
            self.helpers.set_wanted(workers, simulate.as_deref());
            return;
        }
        if let Command::SetBackend { backend, simulate } = cmd {
            wasm_bindgen_futures::spawn_local(set_backend(self.clone(), backend, simulate));
            return;
        }
        if matches!(cmd, Command::Step) {
            let events = self.session.borrow_mut().prepare_step();
            self.post(events);
            wasm_bindgen_futures::spawn_local(slice(self.clone(), 1));
            return;
        }
        if self.session.borrow().needs_sync(&cmd) {
            let me = self.clone();
            let run = self.session.borrow().run;
            wasm_bindgen_futures::spawn_local(async move {
                let events = sync(&me.session).await;
                me.post(events);
                // A command of a run the page has left meanwhile (`NewRun`) is
                // moot: its answer would be taken for the new run's.
                if me.session.borrow().run == run {
                    me.handle_now(cmd);
                }
            });
            return;
        }
        self.handle_now(cmd);
    }

    fn handle_now(self: &Rc<Self>, cmd: Command) {
        let events = self.session.borrow_mut().handle(cmd);
        self.post(events);
        if self.session.borrow().is_running() {
            self.schedule_tick();
        }
    }
}

/// Trains one slice (`train_slice`: up to `max_steps` steps, about `SLICE_S`
/// seconds), awaiting each step's metrics so that messages are handled
/// meanwhile; then the next slice while running.
async fn slice(me: Rc<Worker>, max_steps: usize) {
    if me.busy.replace(true) {
        return;
    }
    let events = train_slice(&me.session, &*me.helpers, max_steps, SLICE_S, |s| {
        // For tests: lose the GPU device after a number of steps.
        if let Some(n) = me.lose_after.get() {
            if n == 0 {
                me.lose_after.set(None);
                if let Device::Gpu(g) = s.device() {
                    g.lose_device();
                }
            } else {
                me.lose_after.set(Some(n - 1));
            }
        }
    })
    .await;
    me.post(events);
    me.busy.set(false);
    if me.session.borrow().is_running() {
        me.schedule_tick();
    }
}

/// Chooses where to train. WebGPU needs an adapter and a device, both asynchronous;
/// without them training stays on the CPU and the notice says why. Auto with
/// an adapter leaves the choice to a measurement when training starts.
async fn set_backend(me: Rc<Worker>, choice: BackendChoice, simulate: Option<String>) {
    me.session.borrow_mut().set_choice(choice);
    // The run's CPU copy must be current before it can leave the GPU.
    if me.session.borrow().mirror_stale() {
        let events = sync(&me.session).await;
        me.post(events);
    }
    if let Some(n) = simulate.as_deref().and_then(|s| s.strip_prefix("lose:")).and_then(|n| n.parse().ok()) {
        me.lose_after.set(Some(n));
    }
    let events = match choice {
        BackendChoice::Cpu => me.session.borrow_mut().set_device(Device::Cpu, None),
        BackendChoice::Auto | BackendChoice::Webgpu => {
            let made = match simulate.as_deref() {
                Some("unavailable") => Err(crate::backend::GpuError("no GPU adapter (simulated for a test)".into())),
                _ => match me.session.borrow().device() {
                    Device::Gpu(g) => Ok(g.clone()),
                    Device::Cpu => Err(crate::backend::GpuError(String::new())),
                },
            };
            let made = match made {
                Err(e) if e.0.is_empty() => Gpu::new().await,
                other => other,
            };
            let mut session = me.session.borrow_mut();
            match made {
                // Auto trains on the faster backend, measured on the model when
                // training starts (`device::measure_auto`).
                Ok(g) if choice == BackendChoice::Auto => {
                    g.warm_up();
                    let slow = simulate.as_deref().and_then(|s| s.strip_prefix("slow:")).map(str::to_string);
                    session.set_auto_gpu(g, slow)
                }
                Ok(g) => {
                    g.warm_up();
                    session.set_device(Device::Gpu(g), None)
                }
                Err(e) if choice == BackendChoice::Auto => session.set_unavailable(e.to_string()),
                Err(e) => session.set_device(
                    Device::Cpu,
                    Some(format!("WebGPU is not available ({e}); training runs on the CPU instead.")),
                ),
            }
        }
    };
    me.post(events);
    if me.session.borrow().is_running() {
        me.schedule_tick();
    }
}

async fn load_mnist(worker: &Rc<Worker>, base_url: &str) -> Result<(Mnist, Mnist), String> {
    let names = [mnist::TRAIN_IMAGES, mnist::TRAIN_LABELS, mnist::TEST_IMAGES, mnist::TEST_LABELS];
    let mut files = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let url = format!("{base_url}mnist/{name}");
        files.push(crate::io::fetch::fetch_bytes(worker.scope.fetch_with_str(&url), &url).await?);
        worker.post(vec![Event::DataProgress { loaded: i + 1, total: names.len() }]);
    }
    let train = Mnist::from_idx(names[0], &files[0], names[1], &files[1]).map_err(|e| e.to_string())?;
    let test = Mnist::from_idx(names[2], &files[2], names[3], &files[3]).map_err(|e| e.to_string())?;
    Ok((train, test))
}

/// Starts the worker: installs the message handler and says it is ready.
/// A worker named `HELPER_NAME` is a training worker's helper instead.
pub fn start() {
    let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    if scope.name() == super::protocol::HELPER_NAME {
        return super::helpers::start_helper(scope);
    }
    let worker = Rc::new(Worker {
        helpers: WebHelpers::new(scope.clone()),
        scope: scope.clone(),
        session: RefCell::new(Session::new()),
        tick_scheduled: Cell::new(false),
        busy: Cell::new(false),
        lose_after: Cell::new(None),
        ticks: web_sys::MessageChannel::new().ok(),
    });
    if let Some(ticks) = &worker.ticks {
        let w = worker.clone();
        let on_tick = Closure::<dyn Fn(MessageEvent)>::new(move |_: MessageEvent| w.tick());
        ticks.port1().set_onmessage(Some(on_tick.as_ref().unchecked_ref()));
        on_tick.forget();
    }
    let w = worker.clone();
    let onmessage = Closure::<dyn Fn(MessageEvent)>::new(move |msg: MessageEvent| match msg.data().as_string() {
        Some(text) => w.on_message(&text),
        None => w.post(vec![Event::Error { message: "the worker expects JSON text messages".into() }]),
    });
    scope.set_onmessage(Some(onmessage.as_ref().unchecked_ref()));
    onmessage.forget();
    worker.post(vec![Event::Ready]);
}
