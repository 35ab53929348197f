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
    /// The worker's figures held back to be drawn together (`DRAW_EVERY_MS`),
    /// and whether a timer will release them.
    held: Vec<Event>,
    release_due: bool,
}

thread_local! {
    static CLIENT: RefCell<Client> = const {
        RefCell::new(Client {
            worker: None,
            view: None,
            ready: false,
            pending: Vec::new(),
            shown_run: 0,
            worker_run: 0,
            keep_left: false,
            held: Vec::new(),
            release_due: false,
        })
    };
}

/// While more than one worker trains, the page draws the worker's figures
/// (`Event::Metrics`, one per 50 ms slice) at most this often, several at
/// once. Where the workers take every core, each redraw (the page's thread,
/// the compositor, raster) takes from training: on a 2-core machine, W1 with
/// 2 workers trained at 2,967 and 3,129 samples/s drawing every slice, at
/// 3,611 and 3,647 holding (README, Benchmarks). With one worker a core is
/// free for the page, which draws every slice.
pub const DRAW_EVERY_MS: i32 = 250;

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
/// checkpoint first); Reset does not keep it. Figures held to be drawn
/// (`DRAW_EVERY_MS`) are of the run left, and are dropped: the worker's
/// `RunStarted` of the new run may come before the timer that would have
/// drawn them, and they must not be drawn into the new run's view (the
/// checkpoint of a kept run carries every step anyway).
pub fn send_new_run(cmd: &Command, keep: bool) {
    let run = CLIENT.with(|c| {
        let mut c = c.borrow_mut();
        c.shown_run += 1;
        c.keep_left = keep;
        c.held.clear();
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
/// While more than one worker trains, the figures of training slices are
/// held and drawn together every `DRAW_EVERY_MS`; any other event shows the
/// held ones first, so that the page sees everything in the worker's order.
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
    if matches!(event, Event::Metrics { .. }) && holding() {
        hold(event);
        return;
    }
    release();
    deliver(event);
}

/// Whether figures are held: more than one worker trains.
fn holding() -> bool {
    let view = CLIENT.with(|c| c.borrow().view);
    view.is_some_and(|v| v.workers.with_untracked(|w| w.as_ref().is_some_and(|(_, running, _)| *running > 1)))
}

/// Holds `event` until the next release, which a timer brings within
/// `DRAW_EVERY_MS` if none is due.
fn hold(event: Event) {
    let schedule = CLIENT.with(|c| {
        let mut c = c.borrow_mut();
        c.held.push(event);
        !std::mem::replace(&mut c.release_due, true)
    });
    if !schedule {
        return;
    }
    let timer = Closure::once_into_js(release);
    let set = web_sys::window()
        .map(|w| w.set_timeout_with_callback_and_timeout_and_arguments_0(timer.unchecked_ref(), DRAW_EVERY_MS));
    if !matches!(set, Some(Ok(_))) {
        // No timer (no window): nothing would release them.
        release();
    }
}

/// Shows the held figures, in order. All are of the run shown: `stale`
/// kept others out, and `send_new_run` drops them when the page leaves it.
fn release() {
    let held = CLIENT.with(|c| {
        let mut c = c.borrow_mut();
        c.release_due = false;
        std::mem::take(&mut c.held)
    });
    for event in held {
        deliver(event);
    }
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
