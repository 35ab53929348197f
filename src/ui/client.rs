//! The page's side of the worker: starts it, queues commands until it is ready,
//! and feeds its events into the `TrainView` signals.

use std::cell::RefCell;

use leptos::prelude::*;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{MessageEvent, Worker};

use super::{DataState, TrainView};
use crate::worker::protocol::{Command, Event};

struct Client {
    worker: Option<Worker>,
    view: Option<TrainView>,
    ready: bool,
    pending: Vec<String>,
    /// The run the page shows (`send_new_run`), and the last the worker said it
    /// began (`Event::RunStarted`): while they differ, the worker's events of
    /// the run it had are stale.
    shown_run: u64,
    worker_run: u64,
    /// Whether the run the page left is kept (its `Checkpoint`, on the way
    /// before `RunStarted`): not after Reset, which starts it over.
    keep_left: bool,
}

thread_local! {
    static CLIENT: RefCell<Client> = const {
        RefCell::new(Client { worker: None, view: None, ready: false, pending: Vec::new(), shown_run: 0, worker_run: 0, keep_left: false })
    };
}

/// Whether `event` is stale: of a run the page has left (see `Command::NewRun`).
/// Notes the worker's `RunStarted`.
fn stale(event: &Event) -> bool {
    CLIENT.with(|c| {
        let mut c = c.borrow_mut();
        if let Event::RunStarted { run } = event {
            c.worker_run = *run;
        }
        event.of_run() && c.worker_run != c.shown_run
    })
}

/// Sends `cmd`, which makes a new run (`SetSpec`, `LoadWeights`, `Resume`),
/// after `NewRun`: from now on the page shows that run, and no event of the
/// one before (already on its way) reaches the view. With `keep`, the run
/// left is kept in this browser with its model (the worker sends its
/// checkpoint first); Reset does not keep it.
pub fn send_new_run(cmd: &Command, keep: bool) {
    let run = CLIENT.with(|c| {
        let mut c = c.borrow_mut();
        c.shown_run += 1;
        c.keep_left = keep;
        c.shown_run
    });
    send(&Command::NewRun { run, keep });
    send(cmd);
}

/// The folder the page was served from, e.g. `http://127.0.0.1:8080/`.
fn base_url() -> String {
    let href = web_sys::window().and_then(|w| w.location().href().ok()).unwrap_or_default();
    let href = href.split(['#', '?']).next().unwrap_or_default().to_string();
    match href.rfind('/') {
        Some(i) => href[..=i].to_string(),
        None => href,
    }
}

/// Starts the worker and routes its events to `view`.
pub fn start(view: TrainView) {
    CLIENT.with(|c| c.borrow_mut().view = Some(view));
    let base = base_url();
    let worker = match crate::worker::protocol::spawn_worker(&base, crate::worker::protocol::TRAINER_NAME) {
        Ok(w) => w,
        Err(e) => {
            view.data.set(DataState::Failed(format!("the training worker could not start: {e:?}")));
            return;
        }
    };
    let onmessage = Closure::<dyn Fn(MessageEvent)>::new(move |msg: MessageEvent| {
        let Some(text) = msg.data().as_string() else { return };
        let Ok(event) = serde_json::from_str::<Event>(&text) else { return };
        if event == Event::Ready {
            let pending = CLIENT.with(|c| {
                let mut c = c.borrow_mut();
                c.ready = true;
                std::mem::take(&mut c.pending)
            });
            post_raw(&serde_json::to_string(&Command::LoadData { base_url: base.clone() }).unwrap());
            for p in pending {
                post_raw(&p);
            }
        }
        receive(event);
    });
    worker.set_onmessage(Some(onmessage.as_ref().unchecked_ref()));
    onmessage.forget();
    let onerror = Closure::<dyn Fn(JsValue)>::new(move |_| {
        view.message.set(Some(
            "The training worker stopped with an error; reload the page to restart it (your model is kept).".into(),
        ));
        view.running.set(false);
    });
    worker.set_onerror(Some(onerror.as_ref().unchecked_ref()));
    onerror.forget();
    CLIENT.with(|c| c.borrow_mut().worker = Some(worker));
}

fn post_raw(text: &str) {
    CLIENT.with(|c| {
        if let Some(w) = &c.borrow().worker {
            let _ = w.post_message(&JsValue::from_str(text));
        }
    });
}

/// Sends a command now, or as soon as the worker is ready.
pub fn send(cmd: &Command) {
    let text = serde_json::to_string(cmd).expect("commands serialize");
    let queued = CLIENT.with(|c| {
        let mut c = c.borrow_mut();
        if c.ready {
            false
        } else {
            c.pending.push(text.clone());
            true
        }
    });
    if !queued {
        post_raw(&text);
    }
}

/// An event from the worker: shown, unless it is of a run the page has left.
pub fn receive(event: Event) {
    if stale(&event) {
        // The run the page left comes back as a checkpoint: kept with its model.
        if let Event::Checkpoint { spec, steps, checkpoint, history, .. } = event {
            if CLIENT.with(|c| c.borrow().keep_left) {
                super::files::on_checkpoint(spec, steps, &checkpoint, *history);
            }
        }
        return;
    }
    deliver(event);
}

/// The run the page shows (`Command::NewRun`); the worker has begun it once
/// `Event::RunStarted` says so.
pub fn shown_run() -> u64 {
    CLIENT.with(|c| c.borrow().shown_run)
}

/// Feeds an event to the page as if the worker had sent it, and as of the
/// run shown (the component tests use this to show views with known data).
pub fn deliver(event: Event) {
    if let Some(view) = CLIENT.with(|c| c.borrow().view) {
        view.apply(event);
    }
}
