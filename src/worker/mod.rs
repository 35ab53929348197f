//! The training worker. `protocol`: the messages between the page and the
//! worker (the only part the UI imports). `session`: `Session`, the worker's
//! state machine (model, data, running or paused). `slice`: the one training
//! loop, for every device. `device`: a GPU run with its CPU copy and the
//! fallback to the CPU. `views`: the model's insides for the page. `web`: the
//! Web Worker glue, and `helpers` its helper workers for data-parallel steps
//! (`split`: whether splitting pays, measured). Everything but `web` is plain Rust, tested natively.

mod device;
#[cfg(target_arch = "wasm32")]
mod helpers;
pub mod protocol;
mod session;
mod slice;
mod split;
mod views;
mod watch;
#[cfg(target_arch = "wasm32")]
pub mod web;

pub use device::SYNC_EVERY;
pub use protocol::*;
pub use session::Session;
pub use slice::{train_slice, Helpers, NoHelpers, SessionCell};
