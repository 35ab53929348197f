//! Share links: a whole experiment (model spec with its data set, training
//! settings and seed; which panels are open; an optional lesson) in the page
//! address's fragment, as JSON, deflated and base64url-encoded:
//! `https://…/#x=<payload>`. Nothing is sent to a server: the fragment never
//! leaves the browser.
//!
//! Links carry a format version `v`. A link from an older version opens (fields
//! it lacks take their defaults); what cannot be restored is said in warnings;
//! a link from a newer version, or a damaged or cut-off link, gets an error that
//! says what to do.

use std::io::{Read, Write};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use flate2::Compression;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::nn::ModelSpec;

/// The format version this build writes and the newest it reads.
pub const VERSION: u32 = 1;
/// The fragment's key: `#x=<payload>`.
pub const KEY: &str = "x=";
/// Longer payloads are refused before decoding (a link is a few hundred characters).
pub const MAX_LINK_CHARS: usize = 100_000;
/// The JSON inside may not inflate past this (a hostile link cannot exhaust memory).
const MAX_JSON_BYTES: u64 = 1 << 20;

/// Everything a link restores.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Experiment {
    pub v: u32,
    pub spec: ModelSpec,
    #[serde(default)]
    pub view: ViewState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lesson: Option<Lesson>,
}

/// How the page looks: panels folded away, the loss chart's scale, the chosen
/// test example of the views.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ViewState {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub closed: Vec<Panel>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub log_scale: bool,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub example: usize,
}

fn is_zero(v: &usize) -> bool {
    *v == 0
}

/// A panel of the page that can be folded away.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Panel {
    Accuracy,
    Draw,
    Confusion,
    Filters,
    Attention,
    Hidden,
    /// A panel of a newer version.
    #[serde(other)]
    Unknown,
}

/// A lesson: one fixed experiment with a title and an instruction on top, and
/// chosen controls hidden, for a class on a projector.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Lesson {
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub instruction: String,
    #[serde(default)]
    pub hide: Vec<Control>,
    /// A file the class opens with the lesson: a link (`https://`, `http://`
    /// or relative to the page) to a `.zip` (Download's) or `.safetensors` of
    /// the lesson's model, e.g. the teacher's trained weights on a class
    /// website. Empty: the lesson starts from fresh weights.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub open: String,
}

/// The longest link a lesson may hold for its file (`Lesson::open`).
pub const MAX_OPEN_LINK_CHARS: usize = 2000;

/// Whether `link` may be a lesson's file: http(s), or a path relative to the
/// page, of at most `MAX_OPEN_LINK_CHARS` characters, and without spaces or
/// control characters. Anything else (`javascript:`, `data:`, `file:`) is
/// refused: a link opens data, never code.
pub fn is_file_link(link: &str) -> bool {
    let lower = link.to_ascii_lowercase();
    let scheme = lower.split_once(':').map(|(s, _)| s).filter(|s| !s.contains('/'));
    !link.is_empty()
        && link.len() <= MAX_OPEN_LINK_CHARS
        && !link.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(scheme, None | Some("http" | "https"))
}

/// Controls a lesson can hide.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Control {
    /// The layer palette and every edit of the stack (the model is fixed).
    Palette,
    /// Data set, optimizer, learning rate, batch size, epochs, seed.
    Hyperparameters,
    /// The compute backend selector.
    Backend,
    /// A control of a newer version.
    #[serde(other)]
    Unknown,
}

impl Lesson {
    pub fn hides(&self, c: Control) -> bool {
        self.hide.contains(&c)
    }
}

/// A link that cannot be opened, with what to do about it.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ShareError {
    #[error("this link holds no experiment (nothing after \"#x=\")")]
    Empty,
    #[error("this link is {0} characters long, more than a layerlab link can be ({MAX_LINK_CHARS}); it was not made by layerlab's Share button")]
    TooLong(usize),
    #[error("this link is damaged: it contains characters a layerlab link never has (was it changed when it was copied?); ask for the link again")]
    NotBase64,
    #[error("this link is incomplete: it was probably cut off when it was copied; copy the whole link again")]
    Truncated,
    #[error("this link's experiment is larger than layerlab allows; it was not made by layerlab's Share button")]
    TooLarge,
    #[error("this link is damaged: its experiment cannot be read ({0}); ask for the link again")]
    Unreadable(String),
    #[error("this link was made by a newer layerlab (link format {0}; this page reads up to {VERSION}); reload the page to get the newest version")]
    Newer(u32),
    #[error("the model in this link cannot be read: {0}")]
    Model(String),
}

/// A link's experiment, and what of it could not be restored.
#[derive(Clone, Debug, PartialEq)]
pub struct Restored {
    pub experiment: Experiment,
    pub warnings: Vec<String>,
}

impl Experiment {
    pub fn new(spec: ModelSpec) -> Self {
        Experiment { v: VERSION, spec, view: ViewState::default(), lesson: None }
    }

    /// The payload for the fragment (without `#x=`).
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).expect("an experiment always serializes");
        let mut enc = DeflateEncoder::new(Vec::new(), Compression::best());
        enc.write_all(&json).expect("writing to memory");
        URL_SAFE_NO_PAD.encode(enc.finish().expect("writing to memory"))
    }

    /// The fragment to append to the page's address: `#x=<payload>`.
    pub fn fragment(&self) -> String {
        format!("#{KEY}{}", self.encode())
    }
}

/// Whether a page address's fragment (with or without `#`) is a share link.
pub fn is_link(fragment: &str) -> bool {
    fragment.trim_start_matches('#').starts_with(KEY)
}

/// Reads a fragment (`#x=…`, `x=…` or the bare payload).
pub fn decode(fragment: &str) -> Result<Restored, ShareError> {
    let payload = fragment.trim().trim_start_matches('#');
    let payload = payload.strip_prefix(KEY).unwrap_or(payload);
    if payload.is_empty() {
        return Err(ShareError::Empty);
    }
    if payload.len() > MAX_LINK_CHARS {
        return Err(ShareError::TooLong(payload.len()));
    }
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).map_err(|e| match e {
        // A payload cut at an odd place leaves a length base64 cannot have.
        base64::DecodeError::InvalidLength(_) | base64::DecodeError::InvalidLastSymbol(..) => ShareError::Truncated,
        _ => ShareError::NotBase64,
    })?;
    let mut json = Vec::new();
    DeflateDecoder::new(&bytes[..]).take(MAX_JSON_BYTES + 1).read_to_end(&mut json).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => ShareError::Truncated,
        _ => ShareError::Unreadable(e.to_string()),
    })?;
    if json.len() as u64 > MAX_JSON_BYTES {
        return Err(ShareError::TooLarge);
    }
    let root: Value = serde_json::from_slice(&json).map_err(|e| {
        if e.is_eof() {
            ShareError::Truncated
        } else {
            ShareError::Unreadable(e.to_string())
        }
    })?;
    let Value::Object(obj) = root else {
        return Err(ShareError::Unreadable("it is not an experiment".into()));
    };
    let v =
        obj.get("v").and_then(Value::as_u64).ok_or_else(|| ShareError::Unreadable("it has no format version".into()))?
            as u32;
    if v > VERSION {
        return Err(ShareError::Newer(v));
    }
    let spec_value = obj.get("spec").ok_or_else(|| ShareError::Unreadable("it has no model".into()))?;
    let spec = ModelSpec::from_json(&spec_value.to_string()).map_err(|e| ShareError::Model(e.to_string()))?;
    let mut warnings = Vec::new();
    let view = match obj.get("view") {
        None => ViewState::default(),
        Some(v) => serde_json::from_value::<ViewState>(v.clone()).unwrap_or_else(|e| {
            warnings.push(format!("the panel layout could not be restored ({e}); showing every panel"));
            ViewState::default()
        }),
    };
    let lesson = match obj.get("lesson") {
        None | Some(Value::Null) => None,
        Some(v) => match serde_json::from_value::<Lesson>(v.clone()) {
            Ok(l) => Some(l),
            Err(e) => {
                warnings.push(format!(
                    "the lesson settings could not be restored ({e}); showing the experiment with every control"
                ));
                None
            }
        },
    };
    if view.closed.contains(&Panel::Unknown) {
        warnings.push("the link folds away a panel this version does not have".into());
    }
    if lesson.as_ref().is_some_and(|l| l.hides(Control::Unknown)) {
        warnings.push("the lesson hides a control this version does not have".into());
    }
    let mut view = view;
    view.closed.retain(|p| *p != Panel::Unknown);
    let lesson = lesson.map(|mut l| {
        l.hide.retain(|c| *c != Control::Unknown);
        if !l.open.is_empty() && !is_file_link(&l.open) {
            warnings.push("the lesson's file is not a web link layerlab opens (http, https, or a path); it starts from fresh weights".into());
            l.open.clear();
        }
        l
    });
    Ok(Restored { experiment: Experiment { v: VERSION, spec, view, lesson }, warnings })
}
