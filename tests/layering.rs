//! The engine's module graph, read from the source: the layering the README
//! describes holds (no import cycle but tensor <-> autograd; the spec and
//! `error` import nothing above them (`text` and `escape` are leaves); nothing below `train` names the GPU
//! backend; the UI reaches the worker through its protocol only).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The Rust source under `path` (a file or a folder), comments left out.
fn source(path: &Path) -> String {
    if path.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(path).unwrap().map(|e| e.unwrap().path()).collect();
        entries.sort();
        return entries.iter().map(|p| source(p)).collect();
    }
    if path.extension().is_none_or(|e| e != "rs") {
        return String::new();
    }
    let text = std::fs::read_to_string(path).unwrap();
    text.lines().filter(|l| !l.trim_start().starts_with("//")).map(|l| format!("{l}\n")).collect()
}

/// The `crate::x` paths `text` names.
fn crate_paths(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        let path: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':').collect();
        out.insert(path.trim_end_matches(':').to_string());
    }
    out
}

fn top(path: &str) -> String {
    path.split("::").next().unwrap_or_default().to_string()
}

const ENGINE: &[&str] =
    &["autograd", "backend", "data", "error", "escape", "io", "nn", "optim", "tensor", "text", "train", "worker"];

fn module_source(name: &str) -> String {
    let dir = Path::new("src").join(name);
    if dir.is_dir() {
        source(&dir)
    } else {
        source(&Path::new("src").join(format!("{name}.rs")))
    }
}

#[test]
fn the_engine_modules_form_no_cycle_but_tensor_and_autograd() {
    let graph: BTreeMap<&str, BTreeSet<String>> = ENGINE
        .iter()
        .map(|&m| {
            let deps = crate_paths(&module_source(m)).iter().map(|p| top(p)).filter(|d| d != m).collect();
            (m, deps)
        })
        .collect();
    for (&m, deps) in &graph {
        assert!(!deps.contains("ui"), "{m} imports the UI");
    }
    // Depth-first search for a cycle, with tensor <-> autograd taken as one node.
    let node = |m: &str| if m == "autograd" { "tensor".to_string() } else { m.to_string() };
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (&m, deps) in &graph {
        for d in deps.iter().filter(|d| ENGINE.contains(&d.as_str())) {
            if node(m) != node(d) {
                edges.entry(node(m)).or_default().insert(node(d));
            }
        }
    }
    fn visit(n: &str, edges: &BTreeMap<String, BTreeSet<String>>, path: &mut Vec<String>, done: &mut BTreeSet<String>) {
        if done.contains(n) {
            return;
        }
        if let Some(at) = path.iter().position(|p| p == n) {
            panic!("import cycle: {} -> {n}", path[at..].join(" -> "));
        }
        path.push(n.to_string());
        for d in edges.get(n).into_iter().flatten() {
            visit(d, edges, path, done);
        }
        path.pop();
        done.insert(n.to_string());
    }
    let mut done = BTreeSet::new();
    for m in ENGINE {
        visit(&node(m), &edges, &mut Vec::new(), &mut done);
    }
}

#[test]
fn the_spec_and_error_import_nothing_above_them() {
    let spec = source(Path::new("src/nn/spec")) + &source(Path::new("src/nn/layers"));
    for path in crate_paths(&spec) {
        assert!(
            ["nn::layers", "nn::spec", "escape", "text", "tensor", "autograd"].iter().any(|ok| path.starts_with(ok)),
            "the spec imports crate::{path}"
        );
    }
    for path in crate_paths(&source(Path::new("src/error.rs"))) {
        assert!(["nn::spec", "nn::model", "text"].iter().any(|ok| path.starts_with(ok)), "error imports crate::{path}");
    }
    // `text` (numbers and serde's messages in words) is a leaf beside `escape`.
    for path in crate_paths(&source(Path::new("src/text.rs"))) {
        assert!(path.starts_with("escape"), "text imports crate::{path}");
    }
}

#[test]
fn nothing_below_train_names_the_gpu_backend() {
    for m in ["autograd", "tensor", "nn", "optim", "data"] {
        let text = module_source(m);
        assert!(!text.contains("gpu::") && !text.contains("backend::gpu"), "{m} names the GPU backend");
    }
}

#[test]
fn the_ui_reaches_the_worker_through_its_protocol() {
    for path in crate_paths(&source(Path::new("src/ui"))) {
        if path.starts_with("worker") {
            assert!(path.starts_with("worker::protocol"), "the UI imports crate::{path}");
        }
    }
}
