//! The Web Worker glue: JSON messages in and out, fetching MNIST, and a loop that
//! trains in slices of about 50 ms, yielding between them so that pause, step
//! and learning-rate messages are handled at once.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent, Response};

use super::{Command, Event, Session};
use crate::data::{mnist, Mnist};

/// Training time per slice before the worker yields to its message queue.
const SLICE_S: f64 = 0.05;

struct Worker {
    scope: DedicatedWorkerGlobalScope,
    session: RefCell<Session>,
    tick_scheduled: Cell<bool>,
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
            Err(e) => return self.post(vec![Event::Error { message: format!("the worker got an unreadable message: {e}") }]),
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
        let events = self.session.borrow_mut().handle(cmd);
        self.post(events);
        if self.session.borrow().is_running() {
            self.schedule_tick();
        }
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
    let worker = Rc::new(Worker { scope: scope.clone(), session: RefCell::new(Session::new()), tick_scheduled: Cell::new(false) });
    let w = worker.clone();
    let onmessage = Closure::<dyn Fn(MessageEvent)>::new(move |msg: MessageEvent| match msg.data().as_string() {
        Some(text) => w.on_message(&text),
        None => w.post(vec![Event::Error { message: "the worker expects JSON text messages".into() }]),
    });
    scope.set_onmessage(Some(onmessage.as_ref().unchecked_ref()));
    onmessage.forget();
    worker.post(vec![Event::Ready]);
}
