//! Share links: the experiment in the page address's fragment, and every way a
//! link can be wrong.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use layerlab::io::share::{decode, is_link, Control, Experiment, Lesson, Panel, ShareError, ViewState, VERSION};
use std::io::Write;

/// A payload made from raw JSON, as another version of layerlab might write it.
fn payload(json: &str) -> String {
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(json.as_bytes()).unwrap();
    URL_SAFE_NO_PAD.encode(enc.finish().unwrap())
}

fn spec_json(name: &str) -> String {
    serde_json::to_string(&layerlab::preset(name).unwrap()).unwrap()
}

#[test]
fn every_preset_round_trips_in_a_short_link() {
    for name in layerlab::PRESETS.iter().map(|p| p.id) {
        let e = Experiment::new(layerlab::preset(name).unwrap());
        let frag = e.fragment();
        assert!(frag.starts_with("#x=") && is_link(&frag));
        assert!(frag.chars().all(|c| c.is_ascii_alphanumeric() || "#=-_".contains(c)), "URL-safe: {frag}");
        assert!(frag.len() < 1000, "{name}: {} characters", frag.len());
        let back = decode(&frag).unwrap();
        assert_eq!(back.experiment, e, "{name}");
        assert!(back.warnings.is_empty());
    }
}

#[test]
fn view_state_and_lesson_round_trip() {
    let mut spec = layerlab::preset("reverse-transformer").unwrap();
    spec.training.seed = 42;
    spec.training.optimizer.set_lr(0.003);
    let e = Experiment {
        v: VERSION,
        spec,
        view: ViewState { closed: vec![Panel::Draw, Panel::Filters], log_scale: true, example: 17 },
        lesson: Some(Lesson {
            title: "Attention reverses".into(),
            instruction: "Press Train; watch the anti-diagonal appear. Ünïcode ✓".into(),
            hide: vec![Control::Palette, Control::Hyperparameters],
            open: "https://school.example/lesson-3/seed-cnn.zip".into(),
        }),
    };
    let back = decode(&e.encode()).unwrap().experiment;
    assert_eq!(back, e);
    assert!(back.lesson.unwrap().hides(Control::Palette));
}

#[test]
fn a_cut_off_link_says_so() {
    let link = Experiment::new(layerlab::preset("tiny-vit").unwrap()).fragment();
    for cut in (4..link.len() - 1).step_by(7).chain([link.len() - 1]) {
        let err = decode(&link[..cut]).unwrap_err();
        assert!(matches!(err, ShareError::Truncated), "cut at {cut} of {}: {err:?}", link.len());
        assert!(err.to_string().contains("cut off when it was copied"), "{err}");
    }
}

#[test]
fn damaged_empty_and_foreign_links_get_messages() {
    assert_eq!(decode("#x=").unwrap_err(), ShareError::Empty);
    assert_eq!(decode("#x=abc$def*").unwrap_err(), ShareError::NotBase64);
    assert!(decode("#x=abc$def*").unwrap_err().to_string().contains("ask for the link again"));
    // Valid base64 that is not a deflate stream.
    assert!(matches!(decode("#x=SGVsbG8gd29ybGQh").unwrap_err(), ShareError::Unreadable(_) | ShareError::Truncated));
    assert!(
        matches!(decode(&payload("[1, 2, 3]")).unwrap_err(), ShareError::Unreadable(m) if m.contains("not an experiment"))
    );
    assert!(
        matches!(decode(&payload(r#"{"spec": {}}"#)).unwrap_err(), ShareError::Unreadable(m) if m.contains("no format version"))
    );
    assert!(matches!(decode(&format!("x={}", "A".repeat(200_000))).unwrap_err(), ShareError::TooLong(200_000)));
    // A deflate bomb: 4 MB of spaces in a tiny payload.
    let bomb = payload(&format!("{{\"v\": 1, \"spec\": {}{}}}", spec_json("mlp"), " ".repeat(4 << 20)));
    assert!(bomb.len() < 10_000);
    assert_eq!(decode(&bomb).unwrap_err(), ShareError::TooLarge);
}

#[test]
fn a_link_from_a_newer_version_says_to_reload() {
    let err = decode(&payload(&format!(r#"{{"v": {}, "spec": {}}}"#, VERSION + 1, spec_json("mlp")))).unwrap_err();
    assert_eq!(err, ShareError::Newer(VERSION + 1));
    assert!(
        err.to_string().contains("made by a newer layerlab") && err.to_string().contains("reload the page"),
        "{err}"
    );
}

#[test]
fn older_or_partial_links_open_and_say_what_they_cannot_restore() {
    // Only the fields the first version requires.
    let r = decode(&payload(&format!(r#"{{"v": 1, "spec": {}}}"#, spec_json("seed-cnn")))).unwrap();
    assert_eq!(r.experiment.spec, layerlab::preset("seed-cnn").unwrap());
    assert_eq!(
        (r.experiment.view.clone(), r.experiment.lesson.clone(), r.warnings.len()),
        (ViewState::default(), None, 0)
    );
    // Panels and controls this version does not know, and an unreadable view.
    let json = format!(
        r#"{{"v": 1, "spec": {}, "view": {{"closed": ["draw", "hologram"]}}, "lesson": {{"title": "T", "hide": ["palette", "time_machine"]}}}}"#,
        spec_json("mlp")
    );
    let r = decode(&payload(&json)).unwrap();
    assert_eq!(r.experiment.view.closed, vec![Panel::Draw]);
    assert_eq!(r.experiment.lesson.as_ref().unwrap().hide, vec![Control::Palette]);
    assert_eq!(r.warnings.len(), 2, "{:?}", r.warnings);
    let json = format!(r#"{{"v": 1, "spec": {}, "view": {{"log_scale": "maybe"}}}}"#, spec_json("mlp"));
    let r = decode(&payload(&json)).unwrap();
    assert!(r.warnings[0].contains("panel layout could not be restored"), "{:?}", r.warnings);
}

#[test]
fn a_link_with_a_broken_model_names_the_layer() {
    let json = r#"{"v": 1, "spec": {"input": {"dataset": "mnist"}, "layers": [{"type": "Dense", "units": 10}, {"type": "Conv3D"}]}}"#;
    let err = decode(&payload(json)).unwrap_err();
    assert!(matches!(&err, ShareError::Model(m) if m.contains("layer 1")), "{err}");
}

#[test]
fn a_lessons_file_is_a_web_link_never_code() {
    use layerlab::io::share::is_file_link;
    for ok in ["https://school.example/w.zip", "http://127.0.0.1:8080/w.safetensors", "weights/seed-cnn.zip", "/w.zip"]
    {
        assert!(is_file_link(ok), "{ok}");
    }
    for bad in [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "data:application/zip;base64,AAAA",
        "file:///etc/passwd",
        "",
        "a b.zip",
        "x\nj.zip",
    ] {
        assert!(!is_file_link(bad), "{bad}");
    }
    assert!(!is_file_link(&format!("https://x.example/{}", "a".repeat(3000))));
    // A link with another kind is opened without it, and says so.
    let mut e = Experiment::new(layerlab::preset("mlp").unwrap());
    e.lesson = Some(Lesson { title: "t".into(), open: "javascript:alert(1)".into(), ..Default::default() });
    let r = decode(&e.fragment()).unwrap();
    assert_eq!(r.experiment.lesson.unwrap().open, "");
    assert!(r.warnings.iter().any(|w| w.contains("the lesson's file")), "{:?}", r.warnings);
}
