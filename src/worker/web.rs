//! The Web Worker glue: JSON messages in and out, fetching MNIST, and a loop that
//! trains in slices of about 50 ms, yielding between them so that pause, step
//! and learning-rate messages are handled at once.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent, Response};

use super::{BackendChoice, Command, Event, Session};
use crate::backend::{Device, Gpu};
use crate::data::{mnist, Mnist};

/// Training time per slice before the worker yields to its message queue.
const SLICE_S: f64 = 0.05;

struct Worker {
    scope: DedicatedWorkerGlobalScope,
    session: RefCell<Session>,
    tick_scheduled: Cell<bool>,
    /// A slice of GPU steps (or a refresh of its CPU copy) is being awaited.
    gpu_busy: Cell<bool>,
    choice: Cell<BackendChoice>,
    /// For tests: lose the GPU device after this many more steps.
    lose_after: Cell<Option<usize>>,
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
        let me = self.clone();
        let cb = Closure::once_into_js(move || {
            me.tick_scheduled.set(false);
            if me.session.borrow().on_gpu() {
                wasm_bindgen_futures::spawn_local(gpu_slice(me, usize::MAX));
                return;
            }
            let events = me.session.borrow_mut().tick(SLICE_S);
            me.post(events);
            if me.session.borrow().is_running() {
                me.schedule_tick();
            }
        });
        let _ = self.scope.set_timeout_with_callback_and_timeout_and_arguments_0(cb.unchecked_ref(), 0);
    }

    fn on_message(self: &Rc<Self>, text: &str) {
        let cmd: Command = match serde_json::from_str(text) {
            Ok(c) => c,
            Err(e) => {
                return self.post(vec![Event::Error { message: format!("the worker got an unreadable message: {e}") }])
            }
        };
        if let Command::LoadData { base_url } = cmd {
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
        if let Command::SetBackend { backend, simulate } = cmd {
            wasm_bindgen_futures::spawn_local(set_backend(self.clone(), backend, simulate));
            return;
        }
        if matches!(cmd, Command::Step) && self.session.borrow().device().is_gpu() {
            let events = self.session.borrow_mut().prepare_step();
            self.post(events);
            if self.session.borrow().on_gpu() {
                wasm_bindgen_futures::spawn_local(gpu_slice(self.clone(), 1));
            }
            return;
        }
        if self.session.borrow().needs_sync(&cmd) {
            let me = self.clone();
            wasm_bindgen_futures::spawn_local(async move {
                sync(&me).await;
                me.handle_now(cmd);
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

/// Brings the CPU copy of a GPU run up to date (one readback); if the GPU
/// fails, training moves to the CPU.
async fn sync(me: &Rc<Worker>) {
    let Some((generation, checkpoint)) = me.session.borrow().begin_sync() else { return };
    match checkpoint.to_host().await {
        Ok(host) => me.session.borrow_mut().finish_sync(generation, host),
        Err(e) => {
            let events = me.session.borrow_mut().fall_back(me.choice.get(), &e.0);
            me.post(events);
        }
    }
}

/// Trains on the GPU for about one slice: each step is recorded, its three
/// metric words awaited (the worker handles messages meanwhile), and completed.
async fn gpu_slice(me: Rc<Worker>, max_steps: usize) {
    if me.gpu_busy.replace(true) {
        return;
    }
    let started = me.session.borrow_mut().slice_start(max_steps, SLICE_S);
    if let Some(mut slice) = started {
        loop {
            let begun = {
                let mut s = me.session.borrow_mut();
                if (s.is_running() || max_steps == 1) && s.on_gpu() && s.slice_wants_step(&slice) {
                    s.begin_gpu_step()
                } else {
                    None
                }
            };
            let Some((generation, pending)) = begun else { break };
            if let Some(n) = me.lose_after.get() {
                if n == 0 {
                    me.lose_after.set(None);
                    if let Device::Gpu(g) = me.session.borrow().device() {
                        g.lose_device();
                    }
                } else {
                    me.lose_after.set(Some(n - 1));
                }
            }
            let words = pending.read().await;
            let sync_due = me.session.borrow_mut().finish_gpu_step(&mut slice, generation, pending, words);
            if sync_due {
                sync(&me).await;
                me.session.borrow_mut().slice_synced(&mut slice);
            }
        }
        let events = me.session.borrow_mut().slice_end(slice);
        me.post(events);
    }
    me.gpu_busy.set(false);
    if me.session.borrow().is_running() {
        me.schedule_tick();
    }
}

/// Chooses where to train. WebGPU needs an adapter and a device, both asynchronous;
/// without them training stays on the CPU and the notice says why.
async fn set_backend(me: Rc<Worker>, choice: BackendChoice, simulate: Option<String>) {
    me.choice.set(choice);
    // The run's CPU copy must be current before it can leave the GPU.
    if me.session.borrow().mirror_stale() {
        sync(&me).await;
    }
    let (device, notice) = match choice {
        BackendChoice::Cpu => (Device::Cpu, None),
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
            match made {
                Ok(g) => {
                    g.warm_up();
                    (Device::Gpu(g), None)
                }
                Err(e) if choice == BackendChoice::Auto => {
                    (Device::Cpu, Some(format!("No WebGPU here ({e}); training runs on the CPU.")))
                }
                Err(e) => {
                    (Device::Cpu, Some(format!("WebGPU is not available ({e}); training runs on the CPU instead.")))
                }
            }
        }
    };
    if let Some(n) = simulate.as_deref().and_then(|s| s.strip_prefix("lose:")).and_then(|n| n.parse().ok()) {
        me.lose_after.set(Some(n));
    }
    let mut events = me.session.borrow_mut().set_device(device, notice);
    for e in &mut events {
        if let Event::Backend { choice: c, .. } = e {
            *c = choice;
        }
    }
    me.post(events);
    if me.session.borrow().is_running() {
        me.schedule_tick();
    }
}

/// The body of the response to `fetch` (a `fetch_with_str(url)` of a window or a
/// worker), or why there is none.
pub(crate) async fn fetch_bytes(fetch: js_sys::Promise, url: &str) -> Result<Vec<u8>, String> {
    let fail = |e: JsValue| format!("could not load {url}: {}", e.as_string().unwrap_or_else(|| format!("{e:?}")));
    let resp: Response = JsFuture::from(fetch).await.map_err(fail)?.unchecked_into();
    if !resp.ok() {
        return Err(format!("could not load {url}: HTTP {}", resp.status()));
    }
    let buf = JsFuture::from(resp.array_buffer().map_err(fail)?).await.map_err(fail)?;
    Ok(js_sys::Uint8Array::new(&buf).to_vec())
}

async fn load_mnist(worker: &Rc<Worker>, base_url: &str) -> Result<(Mnist, Mnist), String> {
    let names = [mnist::TRAIN_IMAGES, mnist::TRAIN_LABELS, mnist::TEST_IMAGES, mnist::TEST_LABELS];
    let mut files = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let url = format!("{base_url}mnist/{name}");
        files.push(fetch_bytes(worker.scope.fetch_with_str(&url), &url).await?);
        worker.post(vec![Event::DataProgress { loaded: i + 1, total: names.len() }]);
    }
    let train = Mnist::from_idx(names[0], &files[0], names[1], &files[1]).map_err(|e| e.to_string())?;
    let test = Mnist::from_idx(names[2], &files[2], names[3], &files[3]).map_err(|e| e.to_string())?;
    Ok((train, test))
}

/// Starts the worker: installs the message handler and says it is ready.
pub fn start() {
    let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    let worker = Rc::new(Worker {
        scope: scope.clone(),
        session: RefCell::new(Session::new()),
        tick_scheduled: Cell::new(false),
        gpu_busy: Cell::new(false),
        choice: Cell::new(BackendChoice::Auto),
        lose_after: Cell::new(None),
    });
    let w = worker.clone();
    let onmessage = Closure::<dyn Fn(MessageEvent)>::new(move |msg: MessageEvent| match msg.data().as_string() {
        Some(text) => w.on_message(&text),
        None => w.post(vec![Event::Error { message: "the worker expects JSON text messages".into() }]),
    });
    scope.set_onmessage(Some(onmessage.as_ref().unchecked_ref()));
    onmessage.forget();
    worker.post(vec![Event::Ready]);
}
