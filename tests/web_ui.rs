//! The page's components in headless Chromium (wasm-bindgen-test): mount the app,
//! click, type, and check the DOM through `data-testid`s.
#![cfg(target_arch = "wasm32")]

use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;
use web_sys::{HtmlElement, HtmlInputElement, HtmlSelectElement};

wasm_bindgen_test_configure!(run_in_browser);

/// Lets Leptos flush its effects and DOM updates.
async fn settle() {
    for _ in 0..3 {
        let p = js_sys::Promise::new(&mut |resolve, _| {
            web_sys::window().unwrap().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, 0).unwrap();
        });
        wasm_bindgen_futures::JsFuture::from(p).await.unwrap();
    }
}

fn document() -> web_sys::Document {
    web_sys::window().unwrap().document().unwrap()
}

/// Mounts a fresh app (with nothing stored from an earlier test) in its own element.
fn mount() -> (HtmlElement, impl Drop) {
    let storage = web_sys::window().unwrap().local_storage().unwrap().unwrap();
    storage.clear().unwrap();
    let root: HtmlElement = document().create_element("div").unwrap().unchecked_into();
    document().body().unwrap().append_child(&root).unwrap();
    let handle = leptos::mount::mount_to(root.clone(), layerlab::ui::App);
    (root, handle)
}

fn all(root: &HtmlElement, testid: &str) -> Vec<HtmlElement> {
    let list = root.query_selector_all(&format!("[data-testid=\"{testid}\"]")).unwrap();
    (0..list.length()).map(|i| list.item(i).unwrap().unchecked_into()).collect()
}

fn one(root: &HtmlElement, testid: &str) -> HtmlElement {
    all(root, testid).into_iter().next().unwrap_or_else(|| panic!("no element with data-testid {testid}"))
}

fn card_types(root: &HtmlElement) -> Vec<String> {
    all(root, "layer-card").iter().map(|c| c.get_attribute("data-layer-type").unwrap()).collect()
}

fn change(input: &HtmlElement, value: &str) {
    if let Some(i) = input.dyn_ref::<HtmlInputElement>() {
        i.set_value(value);
    } else if let Some(s) = input.dyn_ref::<HtmlSelectElement>() {
        s.set_value(value);
    }
    input.dispatch_event(&web_sys::Event::new("change").unwrap()).unwrap();
}

#[wasm_bindgen_test]
async fn starts_with_the_seed_cnn_and_its_shapes() {
    let (root, _h) = mount();
    settle().await;
    assert_eq!(
        card_types(&root),
        ["Conv2D", "MaxPool2D", "Conv2D", "MaxPool2D", "Conv2D", "Flatten", "Dense", "Dense"]
    );
    let shapes: Vec<String> = all(&root, "layer-shape").iter().map(|e| e.text_content().unwrap()).collect();
    assert_eq!(shapes[0], "→ [32, 26, 26] · 320 params");
    assert_eq!(shapes[5], "→ [576] · 0 params");
    assert!(one(&root, "model-totals").text_content().unwrap().starts_with("93,322 parameters"));
    assert!(all(&root, "layer-error").is_empty());
}

#[wasm_bindgen_test]
async fn palette_click_adds_a_layer_and_undo_redo_work() {
    let (root, _h) = mount();
    settle().await;
    one(&root, "palette-item-Dropout").click();
    settle().await;
    assert_eq!(card_types(&root).last().unwrap(), "Dropout");
    assert_eq!(card_types(&root).len(), 9);
    one(&root, "undo-button").click();
    settle().await;
    assert_eq!(card_types(&root).len(), 8);
    one(&root, "redo-button").click();
    settle().await;
    assert_eq!(card_types(&root).len(), 9);
    // The keyboard: Ctrl+Z undoes, Ctrl+Shift+Z and Ctrl+Y redo.
    let key_of = |k: &str, shift: bool| {
        let init = web_sys::KeyboardEventInit::new();
        init.set_key(k);
        init.set_ctrl_key(true);
        init.set_shift_key(shift);
        init.set_bubbles(true);
        let ev = web_sys::KeyboardEvent::new_with_keyboard_event_init_dict("keydown", &init).unwrap();
        document().body().unwrap().dispatch_event(&ev).unwrap();
    };
    let key = |shift: bool| key_of("z", shift);
    key(false);
    settle().await;
    assert_eq!(card_types(&root).len(), 8);
    key(true);
    settle().await;
    assert_eq!(card_types(&root).len(), 9);
    key(false);
    settle().await;
    key_of("y", false);
    settle().await;
    assert_eq!(card_types(&root).len(), 9, "Ctrl+Y redoes");
}

#[wasm_bindgen_test]
async fn the_theme_chosen_is_remembered() {
    let (root, h) = mount();
    settle().await;
    let dark = |r: &HtmlElement| r.query_selector(".app").unwrap().unwrap().class_list().contains("dark");
    let first = dark(&root);
    one(&root, "theme-toggle").click();
    settle().await;
    assert_eq!(dark(&root), !first);
    drop(h);
    // A reload (a fresh mount, storage kept) keeps the choice.
    let root2: HtmlElement = document().create_element("div").unwrap().unchecked_into();
    document().body().unwrap().append_child(&root2).unwrap();
    let _h2 = leptos::mount::mount_to(root2.clone(), layerlab::ui::App);
    settle().await;
    assert_eq!(dark(&root2), !first, "the theme chosen in this browser");
    let _ = root;
}

#[wasm_bindgen_test]
async fn an_invalid_stack_shows_the_error_disables_train_and_offers_the_fix() {
    let (root, _h) = mount();
    settle().await;
    // Remove the Flatten: Dense now gets [64, 3, 3].
    all(&root, "remove-layer")[5].click();
    settle().await;
    let errors = all(&root, "layer-error");
    assert_eq!(errors.len(), 1);
    assert!(errors[0]
        .text_content()
        .unwrap()
        .contains("layer 5 Dense: expects a flat input but gets [64, 3, 3]; insert Flatten before it"));
    assert!(one(&root, "train-button").unchecked_into::<web_sys::HtmlButtonElement>().disabled());
    assert!(one(&root, "status").text_content().unwrap().starts_with("Fix the model to train"));
    one(&root, "fix-button").click();
    settle().await;
    assert!(all(&root, "layer-error").is_empty());
    assert_eq!(card_types(&root)[5], "Flatten");
}

#[wasm_bindgen_test]
async fn editing_a_parameter_updates_shapes_and_bad_text_is_reported() {
    let (root, _h) = mount();
    settle().await;
    let filters = all(&root, "param-filters")[0].clone();
    // As you type, the shape follows; the edit lands (undoably) on change.
    filters.unchecked_ref::<HtmlInputElement>().set_value("16");
    filters.dispatch_event(&web_sys::Event::new("input").unwrap()).unwrap();
    settle().await;
    assert_eq!(all(&root, "layer-shape")[0].text_content().unwrap(), "→ [16, 26, 26] · 160 params");
    change(&filters, "8");
    settle().await;
    assert_eq!(all(&root, "layer-shape")[0].text_content().unwrap(), "→ [8, 26, 26] · 80 params");
    let kernel = all(&root, "param-kernel_size")[0].clone();
    change(&kernel, "big");
    settle().await;
    assert!(one(&root, "param-error").text_content().unwrap().starts_with("kernel_size:"));
    assert_eq!(
        all(&root, "layer-shape")[0].text_content().unwrap(),
        "→ [8, 26, 26] · 80 params",
        "a bad value changes nothing"
    );
}

#[wasm_bindgen_test]
async fn presets_replace_the_stack_undoably_and_the_stack_persists() {
    let (root, h) = mount();
    settle().await;
    change(&one(&root, "preset-select"), "mlp");
    settle().await;
    assert_eq!(card_types(&root), ["Flatten", "Dense", "Dropout", "Dense"]);
    drop(h);
    // A reload (a fresh mount without clearing storage) brings the stack back.
    let root2: HtmlElement = document().create_element("div").unwrap().unchecked_into();
    document().body().unwrap().append_child(&root2).unwrap();
    let _h2 = leptos::mount::mount_to(root2.clone(), layerlab::ui::App);
    settle().await;
    assert_eq!(card_types(&root2), ["Flatten", "Dense", "Dropout", "Dense"]);
    one(&root2, "undo-button").click();
    settle().await;
    let _ = root;
}

#[wasm_bindgen_test]
async fn unreadable_stored_state_is_reported_not_fatal() {
    let storage = web_sys::window().unwrap().local_storage().unwrap().unwrap();
    storage.set_item("layerlab.spec.v1", "{not json").unwrap();
    let root: HtmlElement = document().create_element("div").unwrap().unchecked_into();
    document().body().unwrap().append_child(&root).unwrap();
    let _h = leptos::mount::mount_to(root.clone(), layerlab::ui::App);
    settle().await;
    assert_eq!(card_types(&root).len(), 8, "falls back to the Seed CNN");
    assert!(one(&root, "notice").text_content().unwrap().contains("The model saved in this browser could not be read"));
}

/// Drops `payload` (as the palette or a card would carry it) on `target`.
fn drop_on(target: &HtmlElement, payload: &str) {
    let dt = web_sys::DataTransfer::new().unwrap();
    dt.set_data("text/plain", payload).unwrap();
    let init = web_sys::DragEventInit::new();
    init.set_bubbles(true);
    init.set_cancelable(true);
    init.set_data_transfer(Some(&dt));
    let ev = web_sys::DragEvent::new_with_event_init_dict("drop", &init).unwrap();
    target.dispatch_event(&ev).unwrap();
}

#[wasm_bindgen_test]
async fn drag_and_drop_inserts_and_reorders() {
    let (root, _h) = mount();
    settle().await;
    // A Dropout from the palette, dropped on card 6 (the first Dense), lands before it.
    let palette = one(&root, "palette-item-Dropout");
    assert_eq!(palette.get_attribute("draggable").as_deref(), Some("true"));
    drop_on(&all(&root, "layer-card")[6], "new:Dropout");
    settle().await;
    assert_eq!(
        card_types(&root),
        ["Conv2D", "MaxPool2D", "Conv2D", "MaxPool2D", "Conv2D", "Flatten", "Dropout", "Dense", "Dense"]
    );
    // Card 6 (the Dropout) dragged onto card 1 moves before it.
    drop_on(&all(&root, "layer-card")[1], "move:6");
    settle().await;
    assert_eq!(
        card_types(&root),
        ["Conv2D", "Dropout", "MaxPool2D", "Conv2D", "MaxPool2D", "Conv2D", "Flatten", "Dense", "Dense"]
    );
    one(&root, "undo-button").click();
    settle().await;
    assert_eq!(card_types(&root)[6], "Dropout");
}

#[wasm_bindgen_test]
async fn sequence_presets_bring_the_attention_panel_and_task_fields() {
    let (root, _h) = mount();
    settle().await;
    assert!(all(&root, "attention-panel").is_empty(), "no attention in the Seed CNN");
    change(&one(&root, "preset-select"), "reverse-transformer");
    settle().await;
    assert_eq!(
        card_types(&root),
        ["Embedding", "PositionalEmbedding", "TransformerEncoder", "TransformerEncoder", "Dense"]
    );
    assert_eq!(all(&root, "attention-panel").len(), 1);
    assert!(one(&root, "input-card").text_content().unwrap().contains("reverse task, token ids [8]"));
    // A longer sequence changes every shape, through the task's own field.
    change(&one(&root, "seq-len-input"), "12");
    settle().await;
    assert_eq!(all(&root, "layer-shape")[4].text_content().unwrap(), "→ [12, 10] · 650 params");
    // Switching the data set to MNIST makes the Embedding invalid, with a message.
    change(&one(&root, "dataset-select"), "mnist");
    settle().await;
    assert!(one(&root, "layer-error").text_content().unwrap().contains("layer 0 Embedding: takes token ids"));
}

/// Training fields take the spec's own checks: a count past its stated
/// maximum (or text that is no number) is refused with a message naming the
/// field, and the model keeps its last good value.
#[wasm_bindgen_test]
async fn training_fields_refuse_counts_past_their_maximum_with_a_message() {
    let (root, _h) = mount();
    settle().await;
    for (field, text, message) in [
        (
            "epochs-input",
            "6148914691236517206",
            "training: epochs must be between 1 and 1,000, got 6,148,914,691,236,517,206",
        ),
        ("batch-input", "5000", "training: batch_size must be between 1 and 4,096, got 5,000; 64 is usual"),
        ("lr-input", "-1", "training: the learning rate must be a positive number, got -1"),
        ("epochs-input", "lots", "training: epochs \"lots\" is not a whole number"),
        ("epochs-input", "4000", "training: epochs must be between 1 and 1,000, got 4,000"),
    ] {
        change(&one(&root, field), text);
        settle().await;
        let shown = one(&root, &format!("{field}-error")).text_content().unwrap();
        assert!(shown.starts_with(message), "{field} {text}: {shown}");
    }
    // A good value clears the message and is taken.
    change(&one(&root, "epochs-input"), "3");
    settle().await;
    assert!(all(&root, "epochs-input-error").is_empty());
    assert!(all(&root, "batch-input-error").len() == 1, "each field keeps its own message");
    change(&one(&root, "preset-select"), "reverse-transformer");
    settle().await;
    change(&one(&root, "seq-len-input"), "100000");
    settle().await;
    assert!(one(&root, "seq-len-input-error")
        .text_content()
        .unwrap()
        .contains("seq_len must be between 1 and 256, got 100,000"));
    assert!(
        one(&root, "input-card").text_content().unwrap().contains("token ids [8]"),
        "the model keeps its sequence length"
    );
}

/// One pixel of a canvas, RGBA.
fn canvas_pixel(canvas: &web_sys::HtmlCanvasElement, x: f64, y: f64) -> Vec<u8> {
    let ctx: web_sys::CanvasRenderingContext2d = canvas.get_context("2d").unwrap().unwrap().unchecked_into();
    ctx.get_image_data(x, y, 1.0, 1.0).unwrap().data().to_vec()
}

#[wasm_bindgen_test]
async fn attention_panel_labels_tokens_and_overlays_patches() {
    use layerlab::worker::{AttentionMap, Command, Event, Session};
    let (root, _h) = mount();
    settle().await;
    change(&one(&root, "preset-select"), "reverse-transformer");
    settle().await;
    // Real maps, from the worker's state machine run here in the page.
    let mut s = Session::new();
    s.handle(Command::SetSpec { spec: layerlab::preset("reverse-transformer").unwrap() });
    s.handle(Command::Step);
    let event = s.handle(Command::Attention { index: 3 }).remove(0);
    let Event::AttentionMaps { tokens, .. } = &event else { panic!("{event:?}") };
    let tokens = tokens.clone();
    layerlab::ui::deliver(event);
    settle().await;
    let layers = all(&root, "attention-layer");
    assert_eq!(layers.len(), 2);
    assert_eq!(layers[1].get_attribute("data-peaks").unwrap().split(' ').count(), 8);
    let tables = root.query_selector_all("table.attn-grid").unwrap();
    assert_eq!(tables.length(), 8, "4 heads in each of 2 layers");
    let table: HtmlElement = tables.item(0).unwrap().unchecked_into();
    let rows = table.query_selector_all("tr").unwrap();
    assert_eq!(rows.length(), 9, "a header row and one row per output position");
    let header: Vec<String> = {
        let ths = rows.item(0).unwrap().unchecked_into::<HtmlElement>().query_selector_all("th").unwrap();
        (1..ths.length()).map(|i| ths.item(i).unwrap().text_content().unwrap()).collect()
    };
    assert_eq!(header, tokens.iter().map(|t| t.to_string()).collect::<Vec<_>>(), "input tokens label the columns");
    let first_row_label = rows
        .item(1)
        .unwrap()
        .unchecked_into::<HtmlElement>()
        .query_selector("th")
        .unwrap()
        .unwrap()
        .text_content()
        .unwrap();
    assert_eq!(first_row_label, tokens[7].to_string(), "output 0's target (the last input token) labels row 0");

    // A ViT: each patch of the digit is tinted by the attention it gets.
    change(&one(&root, "preset-select"), "tiny-vit");
    settle().await;
    // Made-up weights: patch q looks only at patch q+1.
    let mut weights = vec![0.0f32; 256];
    for q in 0..16 {
        weights[q * 16 + (q + 1) % 16] = 1.0;
    }
    let maps = vec![AttentionMap { layer: 3, heads: 1, steps: 16, weights }];
    layerlab::ui::deliver(Event::AttentionMaps {
        index: 0,
        maps,
        tokens: vec![],
        targets: vec![],
        image: vec![0; 784],
        label: 7,
        grid: vec![4, 4],
    });
    settle().await;
    let canvas: web_sys::HtmlCanvasElement = root.query_selector("canvas.patches").unwrap().unwrap().unchecked_into();
    assert!(one(&root, "attention-query")
        .text_content()
        .unwrap()
        .contains("Digit 7 on its 4x4 patch grid: where all patches look"));
    // Averaged over all patches every patch gets the same weight: all tinted.
    let centre = |patch: usize| ((patch % 4) as f64 * 28.0 + 14.0, (patch / 4) as f64 * 28.0 + 14.0);
    let (x0, y0) = centre(0);
    assert_eq!(canvas_pixel(&canvas, x0, y0), canvas_pixel(&canvas, centre(7).0, centre(7).1));
    // Click patch 6 (row 2, column 3): only patch 7 stays tinted.
    let rect = canvas.get_bounding_client_rect();
    let init = web_sys::MouseEventInit::new();
    init.set_bubbles(true);
    init.set_client_x((rect.left() + rect.width() * 0.6) as i32);
    init.set_client_y((rect.top() + rect.height() * 0.3) as i32);
    canvas.dispatch_event(&web_sys::MouseEvent::new_with_mouse_event_init_dict("click", &init).unwrap()).unwrap();
    settle().await;
    assert!(one(&root, "attention-query").text_content().unwrap().contains("where patch 6 (row 2, column 3) looks"));
    let canvas: web_sys::HtmlCanvasElement = root.query_selector("canvas.patches").unwrap().unwrap().unchecked_into();
    let (x7, y7) = centre(7);
    let tinted = canvas_pixel(&canvas, x7, y7);
    assert!(tinted[0] > 150 && tinted[0] > tinted[1] && tinted[1] > tinted[2], "patch 7 is tinted: {tinted:?}");
    assert_eq!(canvas_pixel(&canvas, x0, y0)[..3], [0, 0, 0], "patch 0 gets no attention from patch 6");
}

#[wasm_bindgen_test]
async fn hidden_state_panel_shows_each_recurrent_layer_over_time() {
    use layerlab::worker::{Command, Session};
    let (root, _h) = mount();
    settle().await;
    assert!(all(&root, "hidden-panel").is_empty(), "no recurrent layer in the Seed CNN");
    change(&one(&root, "preset-select"), "reverse-lstm");
    settle().await;
    assert_eq!(all(&root, "hidden-panel").len(), 1);
    let mut s = Session::new();
    s.handle(Command::SetSpec { spec: layerlab::preset("reverse-lstm").unwrap() });
    layerlab::ui::deliver(s.handle(Command::Hidden { index: 1 }).remove(0));
    settle().await;
    let layers = all(&root, "hidden-layer");
    assert_eq!(layers.len(), 1);
    assert_eq!(
        (layers[0].get_attribute("data-steps").unwrap(), layers[0].get_attribute("data-units").unwrap()),
        ("8".to_string(), "128".to_string())
    );
    assert!(layers[0].text_content().unwrap().contains("layer 1 LSTM: 128 units × 8 steps"));
    assert_eq!(layers[0].query_selector_all(".step-tokens span").unwrap().length(), 8, "the token read at each step");
    let canvas: web_sys::HtmlCanvasElement =
        layers[0].query_selector("canvas.states").unwrap().unwrap().unchecked_into();
    assert_eq!((canvas.width(), canvas.height()), (128, 8));
}

fn set_hash(hash: &str) {
    web_sys::window().unwrap().location().set_hash(hash).unwrap();
}

/// Mounts the page opened from a lesson link for `preset`.
async fn open_lesson(
    preset: &str,
    title: &str,
    instruction: &str,
    hide: Vec<layerlab::io::share::Control>,
) -> (HtmlElement, impl Drop) {
    use layerlab::io::share::{Experiment, Lesson};
    let mut e = Experiment::new(layerlab::preset(preset).unwrap());
    e.lesson = Some(Lesson { title: title.into(), instruction: instruction.into(), hide, open: String::new() });
    set_hash(&e.fragment());
    let mounted = mount();
    settle().await;
    mounted
}

#[wasm_bindgen_test]
async fn the_share_dialog_links_the_whole_experiment() {
    use layerlab::io::share::{decode, Control, Panel};
    set_hash("");
    let (root, _h) = mount();
    settle().await;
    change(&one(&root, "preset-select"), "reverse-lstm");
    change(&one(&root, "seed-input"), "7");
    one(&root, "fold-confusion").click();
    settle().await;
    assert!(root.query_selector(".confusion-view.folded").unwrap().is_some(), "the confusion matrix folds away");
    one(&root, "share-button").click();
    settle().await;
    let link = one(&root, "share-link").unchecked_into::<HtmlInputElement>().value();
    let fragment = &link[link.find('#').expect("a fragment")..];
    let e = decode(fragment).unwrap().experiment;
    let mut want = layerlab::preset("reverse-lstm").unwrap();
    want.training.seed = 7;
    assert_eq!(e.spec, want);
    assert_eq!(e.view.closed, vec![Panel::Confusion]);
    assert_eq!(e.lesson, None);
    // The lesson link carries the title, instruction and hidden controls.
    let title = one(&root, "lesson-title");
    title.unchecked_ref::<HtmlInputElement>().set_value("Reversing with an LSTM");
    title.dispatch_event(&web_sys::Event::new("input").unwrap()).unwrap();
    one(&root, "lesson-hide-settings").click();
    settle().await;
    let link = one(&root, "lesson-link").unchecked_into::<HtmlInputElement>().value();
    let lesson = decode(&link[link.find('#').unwrap()..]).unwrap().experiment.lesson.unwrap();
    assert_eq!(lesson.title, "Reversing with an LSTM");
    assert_eq!(lesson.hide, vec![Control::Palette, Control::Hyperparameters]);
    // ... and a file for the class to open: a web link, never anything else.
    let open = one(&root, "lesson-open");
    let lesson_open = |text: &str| {
        open.unchecked_ref::<HtmlInputElement>().set_value(text);
        open.dispatch_event(&web_sys::Event::new("input").unwrap()).unwrap();
    };
    lesson_open("https://school.example/reverse-lstm.zip");
    settle().await;
    let link = one(&root, "lesson-link").unchecked_into::<HtmlInputElement>().value();
    let lesson = decode(&link[link.find('#').unwrap()..]).unwrap().experiment.lesson.unwrap();
    assert_eq!(lesson.open, "https://school.example/reverse-lstm.zip");
    lesson_open("javascript:alert(1)");
    settle().await;
    assert_eq!(all(&root, "lesson-open-error").len(), 1);
    let link = one(&root, "lesson-link").unchecked_into::<HtmlInputElement>().value();
    assert_eq!(decode(&link[link.find('#').unwrap()..]).unwrap().experiment.lesson.unwrap().open, "");
}

#[wasm_bindgen_test]
async fn opening_a_share_link_restores_it_and_undo_brings_back_ones_own_model() {
    use layerlab::io::share::{Experiment, Panel};
    let mut spec = layerlab::preset("tiny-vit").unwrap();
    spec.training.optimizer.set_lr(0.0005);
    let mut e = Experiment::new(spec.clone());
    e.view.closed = vec![Panel::Draw];
    e.view.log_scale = true;
    set_hash(&e.fragment());
    let (root, _h) = mount();
    settle().await;
    assert_eq!(card_types(&root)[0], "Patchify");
    assert_eq!(one(&root, "lr-input").unchecked_into::<HtmlInputElement>().value(), "0.0005");
    assert!(one(&root, "log-scale").unchecked_into::<HtmlInputElement>().checked());
    assert!(root.query_selector(".draw.folded").unwrap().is_some());
    assert!(one(&root, "notice")
        .text_content()
        .unwrap()
        .contains("Opened a shared experiment. Undo brings back the model you had."));
    assert_eq!(
        web_sys::window().unwrap().location().hash().unwrap(),
        "",
        "the address is clean again: the experiment is now this browser's work"
    );
    one(&root, "undo-button").click();
    settle().await;
    assert_eq!(card_types(&root)[0], "Conv2D", "the Seed CNN this browser had");
}

#[wasm_bindgen_test]
async fn a_lesson_link_fixes_the_model_and_settings_and_can_be_left() {
    use layerlab::io::share::Control;
    let (root, _h) = open_lesson(
        "reverse-transformer",
        "Attention reverses",
        "Press Train and watch the last layer.",
        vec![Control::Palette, Control::Hyperparameters],
    )
    .await;
    assert_eq!(one(&root, "lesson-title-shown").text_content().unwrap(), "Attention reverses");
    assert_eq!(one(&root, "lesson-instruction-shown").text_content().unwrap(), "Press Train and watch the last layer.");
    assert!(all(&root, "notice").is_empty(), "a lesson needs no notice");
    assert!(all(&root, "palette-item-Dense").is_empty() && all(&root, "preset-select").is_empty(), "no palette");
    // Open stays: for the lesson model's trained weights (a teacher's
    // download); another model is refused with the reason.
    assert!(one(&root, "open-button").get_attribute("title").unwrap().contains("this lesson's model"));
    let other = layerlab::preset("mlp").unwrap().to_json_pretty();
    drop_files(&one(&root, "model-totals"), &[("mlp.json", other.as_bytes())]);
    let refused = wait_for_notice(&root).await;
    assert!(refused.contains("another model than this lesson's"), "{refused}");
    assert_eq!(card_types(&root)[0], "Embedding", "the lesson's model stays");
    // A fixed field looks fixed and says why.
    assert_eq!(one(&root, "param-units").get_attribute("title").unwrap(), "Fixed by this lesson");
    assert!(root.query_selector(".card-actions:not(.hidden)").unwrap().is_none(), "no move or remove buttons");
    assert!(one(&root, "param-units").unchecked_into::<HtmlInputElement>().read_only());
    assert!(one(&root, "settings-summary")
        .text_content()
        .unwrap()
        .contains("reverse task (length 8, vocabulary 10) · Adam, learning rate 0.001 · batch 64 · 1 epoch · seed 0"));
    assert!(root.query_selector(".settings.hidden").unwrap().is_some());
    assert!(
        web_sys::window().unwrap().location().hash().unwrap().starts_with("#x="),
        "a reload shows the lesson again"
    );
    // Ctrl+Z does not step out of the lesson.
    let init = web_sys::KeyboardEventInit::new();
    init.set_key("z");
    init.set_ctrl_key(true);
    init.set_bubbles(true);
    web_sys::window()
        .unwrap()
        .dispatch_event(&web_sys::KeyboardEvent::new_with_keyboard_event_init_dict("keydown", &init).unwrap())
        .unwrap();
    settle().await;
    assert_eq!(card_types(&root)[0], "Embedding", "still the lesson's model");
    one(&root, "lesson-leave").click();
    settle().await;
    assert!(all(&root, "lesson-banner").is_empty());
    // Left, the lesson is one Undo from the model this browser had.
    one(&root, "undo-button").click();
    settle().await;
    assert_eq!(card_types(&root)[0], "Conv2D");
    assert_eq!(all(&root, "preset-select").len(), 1);
    assert!(!one(&root, "param-units").unchecked_into::<HtmlInputElement>().read_only());
    assert_eq!(web_sys::window().unwrap().location().hash().unwrap(), "");
}

#[wasm_bindgen_test]
async fn a_damaged_link_gets_a_message_and_keeps_ones_model() {
    let e = layerlab::io::share::Experiment::new(layerlab::preset("mlp").unwrap());
    let frag = e.fragment();
    set_hash(&frag[..frag.len() - 9]);
    let (root, _h) = mount();
    settle().await;
    let notice = one(&root, "notice").text_content().unwrap();
    assert!(notice.contains("This share link could not be opened: this link is incomplete"), "{notice}");
    assert_eq!(card_types(&root)[0], "Conv2D", "the Seed CNN is kept");
    set_hash("");
}

/// Drops files (name, contents) onto the page, as a user dragging them from the desktop.
fn drop_files(target: &HtmlElement, files: &[(&str, &[u8])]) {
    let dt = web_sys::DataTransfer::new().unwrap();
    for (name, bytes) in files {
        let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(*bytes));
        dt.items().add_with_file(&web_sys::File::new_with_u8_array_sequence(&parts, name).unwrap()).unwrap();
    }
    let init = web_sys::DragEventInit::new();
    init.set_bubbles(true);
    init.set_data_transfer(Some(&dt));
    target.dispatch_event(&web_sys::DragEvent::new_with_event_init_dict("drop", &init).unwrap()).unwrap();
}

async fn wait_for_notice(root: &HtmlElement) -> String {
    for _ in 0..50 {
        settle().await;
        if let Some(n) = all(root, "notice").first() {
            return n.text_content().unwrap();
        }
    }
    panic!("no notice");
}

#[wasm_bindgen_test]
async fn model_files_dropped_on_the_page_are_opened_or_named_in_an_error() {
    set_hash("");
    let (root, _h) = mount();
    settle().await;
    let spec = layerlab::preset("reverse-lstm").unwrap().to_json_pretty();
    drop_files(&one(&root, "model-totals"), &[("reverse-lstm.json", spec.as_bytes())]);
    assert_eq!(wait_for_notice(&root).await, "Opened reverse-lstm.json. Undo brings back the model you had.Dismiss");
    assert_eq!(card_types(&root), ["Embedding", "LSTM", "Dense"]);
    root.query_selector("[data-testid=notice] button").unwrap().unwrap().unchecked_into::<HtmlElement>().click();
    settle().await;
    drop_files(
        &one(&root, "model-totals"),
        &[("broken.json", br#"{"input": {"dataset": "mnist"}, "layers": [{"type": "Dense", "units": -3}]}"#)],
    );
    let n = wait_for_notice(&root).await;
    assert!(n.starts_with("broken.json: invalid model: layer 0 Dense"), "{n}");
    assert_eq!(card_types(&root), ["Embedding", "LSTM", "Dense"], "a bad file changes nothing");
    root.query_selector("[data-testid=notice] button").unwrap().unwrap().unchecked_into::<HtmlElement>().click();
    settle().await;
    drop_files(&one(&root, "model-totals"), &[("notes.txt", b"hello")]);
    assert!(wait_for_notice(&root)
        .await
        .starts_with("notes.txt: layerlab opens a model file (.json) and its weights (.safetensors)"));
}

#[wasm_bindgen_test]
async fn presenter_mode_is_a_toggle_remembered_in_this_browser() {
    set_hash("");
    let (root, _h) = mount();
    settle().await;
    let app = || root.query_selector(".app").unwrap().unwrap();
    assert!(!app().class_list().contains("presenter"));
    one(&root, "presenter-toggle").click();
    settle().await;
    assert!(app().class_list().contains("presenter"));
    assert_eq!(
        web_sys::window().unwrap().local_storage().unwrap().unwrap().get_item("layerlab.presenter").unwrap().as_deref(),
        Some("1")
    );
    one(&root, "presenter-toggle").click();
    settle().await;
    assert!(!app().class_list().contains("presenter"));
}

#[wasm_bindgen_test]
async fn a_lesson_that_fixes_only_the_settings_allows_edits_but_no_undo_out_of_it() {
    use layerlab::io::share::Control;
    let (root, _h) = open_lesson("mlp", "Try more layers", "", vec![Control::Hyperparameters]).await;
    let undo = || one(&root, "undo-button").unchecked_into::<web_sys::HtmlButtonElement>();
    assert!(undo().disabled(), "nothing to undo inside the lesson yet");
    let n = card_types(&root).len();
    one(&root, "palette-item-Dropout").click();
    settle().await;
    assert_eq!(card_types(&root).len(), n + 1);
    undo().click();
    settle().await;
    assert_eq!(card_types(&root).len(), n, "the student's own edit is undone");
    assert!(undo().disabled(), "but Undo stops at the lesson");
    set_hash("");
}

#[wasm_bindgen_test]
async fn the_backend_selector_shows_where_training_runs_and_why() {
    use layerlab::io::share::Control;
    use layerlab::worker::{BackendChoice, Event};
    let (root, _h) = mount();
    settle().await;
    let select = one(&root, "backend-select").unchecked_into::<HtmlSelectElement>();
    assert_eq!(select.value(), "auto");
    layerlab::ui::deliver(Event::Backend {
        choice: BackendChoice::Auto,
        active: "webgpu".into(),
        adapter: "google swiftshader (software)".into(),
        notice: None,
        speeds: None,
        unavailable: None,
        cpu: "WebAssembly SIMD".into(),
    });
    settle().await;
    let active = one(&root, "backend-active");
    assert_eq!(active.get_attribute("data-active").as_deref(), Some("webgpu"));
    assert_eq!(active.text_content().unwrap(), "WebGPU · google swiftshader (software)");
    assert!(all(&root, "backend-notice").is_empty());
    // Auto has an adapter but has not measured yet; then it has, both ways.
    let auto = |active: &str, speeds: Option<layerlab::worker::protocol::Speeds>| Event::Backend {
        choice: BackendChoice::Auto,
        active: active.into(),
        adapter: "google swiftshader (software)".into(),
        notice: None,
        speeds,
        unavailable: None,
        cpu: "WebAssembly SIMD".into(),
    };
    layerlab::ui::deliver(auto("cpu", None));
    settle().await;
    assert_eq!(
        one(&root, "backend-active").text_content().unwrap(),
        "CPU · Auto measures WebGPU (google swiftshader (software)) against it when training starts"
    );
    layerlab::ui::deliver(auto("cpu", Some(layerlab::worker::protocol::Speeds { gpu: 20.4, cpu: 930.0 })));
    settle().await;
    assert_eq!(one(&root, "backend-active").text_content().unwrap(), "WebGPU 20 samples/s, CPU 930: using the CPU");
    layerlab::ui::deliver(auto("webgpu", Some(layerlab::worker::protocol::Speeds { gpu: 4100.0, cpu: 780.0 })));
    settle().await;
    assert_eq!(
        one(&root, "backend-active").text_content().unwrap(),
        "WebGPU 4,100 samples/s, CPU 780: using WebGPU · google swiftshader (software)"
    );
    // The GPU is lost: the page says so and shows the CPU.
    let why = "WebGPU stopped working (the GPU device was lost). Training goes on on the CPU from the weights of step 25; nothing else is lost.";
    layerlab::ui::deliver(Event::Backend {
        choice: BackendChoice::Auto,
        active: "cpu".into(),
        adapter: String::new(),
        notice: Some(why.into()),
        speeds: None,
        unavailable: None,
        cpu: "WebAssembly SIMD with FMA".into(),
    });
    settle().await;
    // The CPU line says what its kernels run on (the worker built with fused
    // multiply-adds, where the browser has relaxed SIMD).
    assert_eq!(one(&root, "backend-active").text_content().unwrap(), "CPU · WebAssembly SIMD with FMA");
    assert_eq!(one(&root, "backend-active").get_attribute("data-cpu").as_deref(), Some("WebAssembly SIMD with FMA"));
    assert_eq!(one(&root, "backend-notice").text_content().unwrap(), why);
    // No WebGPU in this browser (the normal case for most): one quiet line,
    // the reason on demand, no red notice (issue 15 point 3).
    let reason = "no GPU adapter: No suitable graphics adapter found; noop support not compiled in";
    layerlab::ui::deliver(Event::Backend {
        choice: BackendChoice::Auto,
        active: "cpu".into(),
        adapter: String::new(),
        notice: None,
        speeds: None,
        unavailable: Some(reason.into()),
        cpu: "WebAssembly SIMD".into(),
    });
    settle().await;
    assert_eq!(one(&root, "backend-active").text_content().unwrap(), "CPU · WebGPU is not available in this browser");
    let details = one(&root, "backend-why");
    assert_eq!(details.tag_name(), "DETAILS", "the reason is behind a disclosure");
    assert!(details.text_content().unwrap().contains(reason));
    assert!(all(&root, "backend-notice").is_empty(), "no alert for the normal case");
    // The choice is remembered in this browser.
    change(&select.clone().unchecked_into(), "cpu");
    settle().await;
    let stored = web_sys::window().unwrap().local_storage().unwrap().unwrap().get_item("layerlab.backend").unwrap();
    assert_eq!(stored.as_deref(), Some("cpu"));
    // A lesson can hide the selector; the share dialog offers it.
    one(&root, "share-button").click();
    settle().await;
    one(&root, "lesson-hide-backend").click();
    settle().await;
    let link = one(&root, "lesson-link").unchecked_into::<HtmlInputElement>().value();
    let lesson = layerlab::io::share::decode(&link[link.find('#').unwrap()..]).unwrap().experiment.lesson.unwrap();
    assert!(lesson.hide.contains(&Control::Backend), "{:?}", lesson.hide);
}

#[wasm_bindgen_test]
async fn the_workers_selector_offers_every_core_and_says_how_many_train() {
    use layerlab::worker::Event;
    let (root, _h) = mount();
    settle().await;
    let select = one(&root, "workers-select").unchecked_into::<HtmlSelectElement>();
    let cores = web_sys::window().unwrap().navigator().hardware_concurrency() as usize;
    let max = cores.clamp(1, layerlab::worker::protocol::MAX_WORKERS);
    assert_eq!(select.length() as usize, max, "one choice per core, at most 8");
    let status = || one(&root, "workers-active").text_content().unwrap();
    layerlab::ui::deliver(Event::Workers { wanted: 2, running: 1, note: None });
    settle().await;
    assert_eq!(status(), "1 of 2 ready, the others starting");
    layerlab::ui::deliver(Event::Workers { wanted: 2, running: 2, note: None });
    settle().await;
    assert_eq!(status(), "2 ready; the first steps measure whether sharing each batch is faster");
    assert_eq!(one(&root, "workers-active").get_attribute("data-running").as_deref(), Some("2"));
    // What the run's first steps measured, and what is used: the Seed CNN
    // shares each batch, the MLP (a step of a millisecond) does not.
    layerlab::ui::deliver(Event::WorkerSpeeds { workers: 2, one: 1_062.4, split: 1_718.0, using: 2 });
    settle().await;
    assert_eq!(status(), "2 workers 1,718 samples/s, 1: 1,062: 2 share each batch");
    layerlab::ui::deliver(Event::WorkerSpeeds { workers: 2, one: 46_236.0, split: 14_761.0, using: 1 });
    settle().await;
    assert_eq!(status(), "2 workers 14,761 samples/s, 1: 46,236: each step in one");
    // A browser that cannot start them: one quiet line, with the reason.
    let why = "this browser cannot start workers from a worker, so training runs in one worker";
    layerlab::ui::deliver(Event::Workers { wanted: 2, running: 1, note: Some(why.into()) });
    settle().await;
    assert_eq!(status(), format!("1 training · {why}"));
    // The choice is remembered in this browser.
    if max > 1 {
        change(&select.clone().unchecked_into(), "1");
        settle().await;
        let stored = web_sys::window().unwrap().local_storage().unwrap().unwrap().get_item("layerlab.workers").unwrap();
        assert_eq!(stored.as_deref(), Some("1"));
        web_sys::window().unwrap().local_storage().unwrap().unwrap().remove_item("layerlab.workers").unwrap();
    }
}

#[wasm_bindgen_test]
async fn the_speed_is_averaged_and_the_accuracy_says_what_it_was_measured_on() {
    use layerlab::worker::Event;
    let (root, _h) = mount();
    settle().await;
    let text = |id: &str| one(&root, id).text_content().unwrap();
    assert_eq!(text("speed-value"), "–");
    layerlab::ui::deliver(Event::Running { running: true });
    let slice = |samples_per_s: f32, train_s: f32, first_step: usize| Event::Metrics {
        first_step,
        losses: vec![2.0],
        accuracy: 0.1,
        samples_per_s,
        train_s,
        epoch: 0,
        epoch_progress: 0.0,
        elapsed_s: 1.0,
        total_steps: 938,
    };
    for step in 1..=60 {
        layerlab::ui::deliver(slice(900.0, 0.05, step));
    }
    // Looked at while paused: the page's own worker cannot start in this
    // test, and its error event pauses the page at some moment.
    layerlab::ui::deliver(Event::Running { running: false });
    settle().await;
    assert_eq!(text("speed-value"), "paused (last 900 samples/s)");
    // A short slice (a Step, the end of a run) hardly moves it (issue 15 point 6).
    layerlab::ui::deliver(slice(107.0, 0.01, 61));
    settle().await;
    assert_eq!(text("speed-value"), "paused (last 897 samples/s)");
    // Which test examples the accuracy is on (point 9).
    let evaluation = |samples: usize| Event::Evaluation {
        step: 100,
        accuracy: 0.9,
        loss: 0.3,
        samples,
        sequence_accuracy: None,
        confusion: vec![vec![1; 10]; 10],
    };
    layerlab::ui::deliver(Event::DataLoaded { train: 60_000, test: 10_000 });
    layerlab::ui::deliver(evaluation(1_000));
    settle().await;
    assert_eq!(text("accuracy-samples"), "on 1,000 test digits");
    assert_eq!(text("confusion-samples"), "The last evaluation, on 1,000 test digits.");
    layerlab::ui::deliver(evaluation(10_000));
    settle().await;
    assert_eq!(text("accuracy-samples"), "on all 10,000 test digits");
}

#[wasm_bindgen_test]
async fn a_lesson_can_hide_the_backend_selector() {
    use layerlab::io::share::Control;
    let (root, _h) = open_lesson("mlp", "On any computer", "", vec![Control::Backend]).await;
    let backend = root.query_selector(".backend").unwrap().unwrap();
    assert!(backend.class_list().contains("hidden"), "the lesson hides the backend selector");
    one(&root, "lesson-leave").click();
    settle().await;
    let backend = root.query_selector(".backend").unwrap().unwrap();
    assert!(!backend.class_list().contains("hidden"), "leaving the lesson shows it again");
}

#[wasm_bindgen_test]
fn one_early_spike_leaves_the_loss_curve_readable() {
    use layerlab::ui::{loss_axis, LossAxis};
    // A run whose third step spiked to 29 million (issue 15): the axis follows
    // the rest of the curve, and the spike is counted above it.
    let mut losses = vec![2.3, 2.2, 29_183_670.0];
    losses.extend((0..200).map(|i| 2.1 - i as f32 * 0.005));
    let axis = loss_axis(&losses, false);
    assert_eq!(axis.lo, 0.0);
    assert_eq!((axis.hi, axis.clipped, axis.max), (2.3, 1, 29_183_670.0), "{axis:?}");
    // On a log scale every point fits; a calm run is not clipped.
    let last = 2.1 - 199.0f32 * 0.005;
    assert_eq!(loss_axis(&losses, true), LossAxis { lo: last, hi: 29_183_670.0, clipped: 0, max: 29_183_670.0 });
    let calm: Vec<f32> = (0..100).map(|i| 2.3 - i as f32 * 0.01).collect();
    assert_eq!(loss_axis(&calm, false), LossAxis { lo: 0.0, hi: 2.3, clipped: 0, max: 2.3 });
    // Non-finite losses are left out; none at all gives a unit axis.
    assert_eq!(loss_axis(&[f32::NAN], false), LossAxis { lo: 0.0, hi: 1.0, clipped: 0, max: 1.0 });
}

/// A training slice's figures as the worker sends them: `losses` from step
/// `first_step` of a 938-step run.
fn slice_of(first_step: usize, losses: Vec<f32>) -> layerlab::worker::Event {
    layerlab::worker::Event::Metrics {
        first_step,
        losses,
        accuracy: 0.1,
        samples_per_s: 900.0,
        train_s: 0.05,
        epoch: 0,
        epoch_progress: 0.0,
        elapsed_s: 1.0,
        total_steps: 938,
    }
}

#[wasm_bindgen_test]
async fn figures_of_a_run_the_page_has_left_are_not_shown() {
    // Issue 15 point 5: the worker's figures of the run it had, on their way
    // when the page moved on (Reset, a preset, a file), are not shown as the
    // new run's; from `RunStarted` on, the new run's are.
    use layerlab::worker::Event;
    let (root, _h) = mount();
    settle().await;
    let points = || one(&root, "loss-chart").get_attribute("data-points").unwrap_or_default();
    let metrics = |first_step: usize| slice_of(first_step, vec![2.0, 1.9]);
    layerlab::ui::receive(Event::RunStarted { run: layerlab::ui::shown_run() });
    layerlab::ui::receive(metrics(1));
    // A current end shows (so its absence below means something).
    layerlab::ui::receive(Event::Finished { steps: 2 });
    settle().await;
    assert_eq!(points(), "2");
    assert_eq!(one(&root, "train-button").text_content().unwrap(), "Train 1 more epoch");
    let before = layerlab::ui::shown_run();
    one(&root, "reset-button").click();
    settle().await;
    assert_eq!(layerlab::ui::shown_run(), before + 1, "Reset begins a new run");
    assert_eq!(points(), "0");
    // The old run's next slice and its pause arrive late.
    layerlab::ui::receive(metrics(3));
    layerlab::ui::receive(Event::Finished { steps: 4 });
    settle().await;
    assert_eq!(points(), "0", "the old run's losses are not the new run's");
    assert_eq!(one(&root, "train-button").text_content().unwrap(), "Train", "nor is its end (no 'Train 1 more epoch')");
    layerlab::ui::receive(Event::RunStarted { run: before + 1 });
    layerlab::ui::receive(metrics(1));
    settle().await;
    assert_eq!(points(), "2", "the new run's figures are shown");
}

#[wasm_bindgen_test]
async fn with_two_workers_the_figures_are_drawn_four_times_a_second() {
    // Where the workers take every core, each redraw takes from training:
    // with more than one worker the page holds the slices' figures and draws
    // them together every `DRAW_EVERY_MS`; any other event draws the held
    // ones first, in order. With one worker, at once.
    use layerlab::worker::Event;
    let (root, _h) = mount();
    settle().await;
    let points = || one(&root, "loss-chart").get_attribute("data-points").unwrap_or_default();
    let metrics = |first_step: usize| slice_of(first_step, vec![2.0]);
    let sleep = |ms: i32| {
        wasm_bindgen_futures::JsFuture::from(js_sys::Promise::new(&mut |resolve, _| {
            web_sys::window().unwrap().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms).unwrap();
        }))
    };
    layerlab::ui::receive(Event::RunStarted { run: layerlab::ui::shown_run() });
    layerlab::ui::receive(Event::Workers { wanted: 1, running: 1, note: None });
    layerlab::ui::receive(metrics(1));
    settle().await;
    assert_eq!(points(), "1", "one worker: drawn at once");
    layerlab::ui::receive(Event::Workers { wanted: 2, running: 2, note: None });
    layerlab::ui::receive(metrics(2));
    layerlab::ui::receive(metrics(3));
    settle().await;
    assert_eq!(points(), "1", "two workers: held");
    sleep(layerlab::ui::DRAW_EVERY_MS + 100).await.unwrap();
    settle().await;
    assert_eq!(points(), "3", "drawn together within DRAW_EVERY_MS");
    // Another event draws the held figures first: a pause shows every step.
    layerlab::ui::receive(metrics(4));
    layerlab::ui::receive(Event::Running { running: false });
    settle().await;
    assert_eq!(points(), "4");
    // Held figures of a run the page left meanwhile are not drawn: not when
    // the worker's word that the new run began comes before the timer (the
    // e2e run once showed "Paused after 8 steps" of the run left on the new
    // model's chart)...
    layerlab::ui::receive(metrics(5));
    one(&root, "reset-button").click();
    layerlab::ui::receive(Event::RunStarted { run: layerlab::ui::shown_run() });
    settle().await;
    assert_eq!(points(), "0", "the old run's held figures are dropped, not drawn into the new run");
    sleep(layerlab::ui::DRAW_EVERY_MS + 100).await.unwrap();
    settle().await;
    assert_eq!(points(), "0");
    // ...nor when the timer comes first.
    layerlab::ui::receive(metrics(1));
    layerlab::ui::receive(metrics(2));
    one(&root, "reset-button").click();
    sleep(layerlab::ui::DRAW_EVERY_MS + 100).await.unwrap();
    settle().await;
    assert_eq!(points(), "0", "the old run's held figures are dropped");
    layerlab::ui::receive(Event::RunStarted { run: layerlab::ui::shown_run() });
    layerlab::ui::receive(metrics(1));
    sleep(layerlab::ui::DRAW_EVERY_MS + 100).await.unwrap();
    settle().await;
    assert_eq!(points(), "1", "the new run's figures are drawn");
}

#[wasm_bindgen_test]
async fn the_preset_selector_names_the_model_on_the_page() {
    // Issue 15 point 7: the selector follows the model, whatever changed it.
    let (root, _h) = mount();
    settle().await;
    let select = || one(&root, "preset-select").unchecked_into::<HtmlSelectElement>();
    let description = || one(&root, "preset-description").text_content().unwrap();
    assert_eq!(select().value(), "seed-cnn", "the first visit's model is the Seed CNN");
    assert!(description().contains("convolutions"), "{}", description());
    let titles: Vec<String> =
        (0..select().length()).filter_map(|i| select().item(i)).map(|o| o.text_content().unwrap()).collect();
    assert!(titles.contains(&"Tiny ViT".to_string()), "names, not ids: {titles:?}");
    change(&one(&root, "preset-select"), "mlp");
    settle().await;
    assert_eq!(select().value(), "mlp");
    for _ in 0..4 {
        one(&root, "remove-layer").click();
        settle().await;
    }
    assert_eq!(select().value(), "", "an empty stack is no preset");
    assert!(description().starts_with("Not a preset"), "{}", description());
    for _ in 0..4 {
        one(&root, "undo-button").click();
        settle().await;
    }
    assert_eq!(select().value(), "mlp", "Undo brings the MLP back, and its name");
    // A setting changed is still the same model.
    change(&one(&root, "seed-input"), "7");
    settle().await;
    assert_eq!(select().value(), "mlp");
    // A new empty model: no layers, no preset, one Undo from the MLP.
    one(&root, "new-empty").click();
    settle().await;
    assert!(card_types(&root).is_empty());
    assert_eq!(select().value(), "");
    one(&root, "undo-button").click();
    settle().await;
    assert_eq!(card_types(&root), ["Flatten", "Dense", "Dropout", "Dense"]);
    // Every palette item and parameter says what it is.
    assert!(one(&root, "palette-item-LSTM").get_attribute("title").unwrap().contains("[T, units]"));
    let units = all(&root, "param-units")[0].parent_element().unwrap();
    assert!(units.get_attribute("title").unwrap().starts_with("How many outputs"));
}

#[wasm_bindgen_test]
async fn messages_go_when_their_moment_has_passed() {
    // Issue 15 point 8: a failed request's message stays until a later one
    // succeeds; the notice on top goes when the user starts something else.
    use layerlab::worker::Event;
    let e = layerlab::io::share::Experiment::new(layerlab::preset("mlp").unwrap());
    let frag = e.fragment();
    set_hash(&frag[..frag.len() - 9]);
    let (root, _h) = mount();
    settle().await;
    set_hash("");
    assert_eq!(all(&root, "notice").len(), 1, "the damaged link is reported");
    let status = || one(&root, "status").text_content().unwrap();
    layerlab::ui::deliver(Event::DataLoaded { train: 60_000, test: 10_000 });
    let failed = "there is no test example 99999; choose 0 to 9999";
    layerlab::ui::deliver(Event::Error { message: failed.into() });
    settle().await;
    assert_eq!(status(), failed);
    layerlab::ui::deliver(Event::Prediction { probs: vec![0.1; 10] });
    settle().await;
    assert_ne!(status(), failed, "a later request succeeded");
    assert_eq!(all(&root, "notice").len(), 1, "the notice waits for the user");
    change(&one(&root, "preset-select"), "tiny-vit");
    settle().await;
    assert!(all(&root, "notice").is_empty(), "choosing a preset moves on from the link's notice");
}

#[wasm_bindgen_test]
async fn a_complete_run_says_so_and_trains_one_more_epoch() {
    // Issue 15 point 11: not a dead end where Train does nothing visible.
    use layerlab::worker::Event;
    let (root, _h) = mount();
    settle().await;
    layerlab::ui::deliver(Event::DataLoaded { train: 60_000, test: 10_000 });
    layerlab::ui::deliver(Event::Metrics {
        first_step: 938,
        losses: vec![0.1],
        accuracy: 0.98,
        samples_per_s: 900.0,
        train_s: 0.05,
        epoch: 0,
        epoch_progress: 1.0,
        elapsed_s: 60.0,
        total_steps: 938,
    });
    layerlab::ui::deliver(Event::Running { running: false });
    layerlab::ui::deliver(Event::Finished { steps: 938 });
    settle().await;
    assert_eq!(one(&root, "speed-value").text_content().unwrap(), "done (last 900 samples/s)", "not 'paused'");
    let status = one(&root, "status").text_content().unwrap();
    let epochs = || one(&root, "epochs-input").unchecked_into::<HtmlInputElement>().value();
    // The page's own worker cannot start in this test; its error, when it
    // has come, is what the status line says.
    if !status.contains("stopped with an error") {
        assert_eq!(status, "Training complete: 938 steps in 1 epoch. Train goes on for one more epoch.");
    }
    let train = one(&root, "train-button");
    assert_eq!(train.text_content().unwrap(), "Train 1 more epoch");
    assert!(one(&root, "step-button").has_attribute("disabled"), "Step has no step to take");
    assert_eq!(epochs(), "1");
    train.click();
    settle().await;
    assert_eq!(epochs(), "2", "one more epoch");
    assert_eq!(one(&root, "train-button").text_content().unwrap(), "Train");
    assert!(!one(&root, "status").text_content().unwrap().contains("complete"));
}

#[wasm_bindgen_test]
async fn a_refused_field_says_what_it_expects_and_holds_training() {
    // Issue 15 point 10: words, not serde's; a list for the activation; Train
    // waits for a field in error, and the status names it.
    use layerlab::worker::Event;
    let (root, _h) = mount();
    settle().await;
    layerlab::ui::deliver(Event::DataLoaded { train: 60_000, test: 10_000 });
    settle().await;
    let train = || one(&root, "train-button");
    assert!(!train().has_attribute("disabled"));
    let kernel = all(&root, "param-kernel_size")[0].clone();
    change(&kernel, "abc");
    settle().await;
    let error = one(&root, "param-error").text_content().unwrap();
    assert_eq!(error, "kernel_size: expects a whole number such as 3, or [height, width] such as [3, 5]");
    assert!(train().has_attribute("disabled"), "no training on the last valid value");
    assert!(one(&root, "step-button").has_attribute("disabled"));
    let status = one(&root, "status").text_content().unwrap();
    assert!(status.starts_with("Fix layer 0 Conv2D to train: kernel_size: expects"), "{status}");
    change(&kernel, "5");
    settle().await;
    assert!(!train().has_attribute("disabled"), "fixed");
    // The activation is a list of the activations.
    let activation = all(&root, "param-activation")[0].clone();
    let select = activation.dyn_ref::<HtmlSelectElement>().expect("a list");
    assert_eq!(select.value(), "relu");
    let options: Vec<String> =
        (0..select.length()).filter_map(|i| select.item(i)).map(|o| o.text_content().unwrap()).collect();
    assert_eq!(options, ["default", "linear", "relu", "tanh", "sigmoid", "gelu", "softmax"]);
    change(&activation, "tanh");
    settle().await;
    assert_eq!(all(&root, "param-activation")[0].dyn_ref::<HtmlSelectElement>().unwrap().value(), "tanh");
    // A training setting in error holds training too, and so does a count too large.
    change(&one(&root, "batch-input"), "99999999999999999999999");
    settle().await;
    let message = one(&root, "batch-input-error").text_content().unwrap();
    assert!(message.contains("99,999,999,999,999,999,999,999"), "{message}");
    assert!(train().has_attribute("disabled"));
    change(&one(&root, "batch-input"), "32");
    settle().await;
    assert!(!train().has_attribute("disabled"));
}

#[wasm_bindgen_test]
async fn a_sequence_tasks_confusion_matrix_speaks_of_tokens_and_shows_sequences() {
    // Issue 15 point 4: not "digits" on a sequence task, and a cell's examples are sequences.
    use layerlab::worker::protocol::ExampleSequence;
    use layerlab::worker::Event;
    let (root, _h) = mount();
    settle().await;
    change(&one(&root, "preset-select"), "reverse-transformer");
    settle().await;
    let mut confusion = vec![vec![0u32; 10]; 10];
    confusion[2][3] = 5;
    confusion[2][2] = 769;
    layerlab::ui::deliver(Event::Evaluation {
        step: 100,
        accuracy: 0.5,
        loss: 1.0,
        samples: 1000,
        sequence_accuracy: Some(0.1),
        confusion,
    });
    settle().await;
    let cells = all(&root, "confusion-cell");
    assert_eq!(
        cells[2 * 10 + 3].get_attribute("title").unwrap(),
        "5 positions whose target token 2 was predicted as 3"
    );
    let view = root.query_selector(".confusion-view").unwrap().unwrap().text_content().unwrap();
    assert!(!view.contains("digit"), "no digits on a sequence task: {view}");
    let seq = ExampleSequence { tokens: vec![1, 2, 3], targets: vec![3, 2, 1], predicted: vec![3, 3, 1], position: 1 };
    layerlab::ui::deliver(Event::Examples {
        actual: 2,
        predicted: 3,
        indices: vec![7],
        images: vec![],
        sequences: vec![seq],
    });
    settle().await;
    assert_eq!(
        one(&root, "confusion-examples-title").text_content().unwrap(),
        "Test sequences where target token 2 was predicted as 3 (that position marked):"
    );
    let row = one(&root, "confusion-sequence");
    assert_eq!(row.query_selector_all(".tok.picked").unwrap().length(), 3, "the position in each row");
    assert_eq!(row.query_selector_all(".tok.wrong").unwrap().length(), 1, "the wrong prediction");
    layerlab::ui::deliver(Event::Examples {
        actual: 2,
        predicted: 2,
        indices: vec![],
        images: vec![],
        sequences: vec![],
    });
    settle().await;
    assert_eq!(
        one(&root, "confusion-examples-title").text_content().unwrap(),
        "No position whose target token is 2 was predicted as 2."
    );
}

#[wasm_bindgen_test]
async fn the_first_visit_is_introduced_once() {
    let (root, h) = mount();
    settle().await;
    assert_eq!(all(&root, "intro").len(), 1, "a first visit says what to do");
    one(&root, "intro-close").click();
    settle().await;
    assert!(all(&root, "intro").is_empty());
    drop(h);
    let root2: HtmlElement = document().create_element("div").unwrap().unchecked_into();
    document().body().unwrap().append_child(&root2).unwrap();
    let _h2 = leptos::mount::mount_to(root2.clone(), layerlab::ui::App);
    settle().await;
    assert!(all(&root2, "intro").is_empty(), "not again in this browser");
    let _ = root;
}

/// Waits (a while) for the page's own worker to fail: it cannot start in
/// these tests, and its error event pauses the page whenever it comes.
async fn worker_gone(root: &HtmlElement) {
    for _ in 0..100 {
        if one(root, "status").text_content().unwrap().contains("stopped with an error") {
            return;
        }
        settle().await;
    }
}

#[wasm_bindgen_test]
async fn the_status_counts_steps_and_says_the_time_left() {
    // Issue 15 point 16: steps done of the total, and the time left.
    use layerlab::worker::Event;
    let (root, _h) = mount();
    worker_gone(&root).await;
    layerlab::ui::deliver(Event::DataLoaded { train: 60_000, test: 10_000 });
    settle().await;
    one(&root, "train-button").click();
    layerlab::ui::deliver(Event::Running { running: true });
    for step in 1..=60 {
        layerlab::ui::deliver(Event::Metrics {
            first_step: step,
            losses: vec![2.0],
            accuracy: 0.1,
            samples_per_s: 640.0,
            train_s: 0.1,
            epoch: 0,
            epoch_progress: step as f32 / 938.0,
            elapsed_s: step as f32 / 10.0,
            total_steps: 938,
        });
    }
    settle().await;
    // 878 steps of 64 at 640 samples/s: 88 s.
    assert_eq!(
        one(&root, "status").text_content().unwrap(),
        "Training · step 60 of 938 · epoch 1 of 1 · about 1 min left"
    );
}

#[wasm_bindgen_test]
async fn the_loss_chart_shows_the_test_loss_and_both_charts_have_ticks() {
    // Issue 15 point 16: training and test loss on one chart; axis ticks.
    use layerlab::worker::Event;
    let (root, _h) = mount();
    settle().await;
    layerlab::ui::deliver(Event::Metrics {
        first_step: 1,
        losses: (0..200).map(|i| 2.3 - i as f32 * 0.01).collect(),
        accuracy: 0.5,
        samples_per_s: 900.0,
        train_s: 1.0,
        epoch: 0,
        epoch_progress: 0.2,
        elapsed_s: 1.0,
        total_steps: 938,
    });
    // The test loss rising above the training loss: overfitting, in view.
    for (step, loss) in [(100, 1.2), (200, 3.0)] {
        layerlab::ui::deliver(Event::Evaluation {
            step,
            accuracy: 0.8,
            loss,
            samples: 1000,
            sequence_accuracy: None,
            confusion: vec![vec![1; 10]; 10],
        });
    }
    settle().await;
    let chart = one(&root, "loss-chart");
    assert_eq!(chart.get_attribute("data-test-points").unwrap(), "2");
    let dots = chart.query_selector(".test-dots").unwrap().unwrap().get_attribute("d").unwrap();
    assert_eq!(dots.matches('M').count(), 2, "{dots}");
    let ticks = |id: &str| -> Vec<String> {
        let el = one(&root, id);
        let spans = el.query_selector_all("span").unwrap();
        (0..spans.length()).map(|i| spans.item(i).unwrap().text_content().unwrap()).collect()
    };
    let loss = ticks("loss-ticks");
    assert_eq!(loss.len(), 3, "{loss:?}");
    assert_eq!(loss, ["3.000", "1.500", "0.000"], "the axis reaches up to the test loss");
    assert_eq!(ticks("accuracy-ticks"), ["100 %", "50 %", "0 %"]);
    let steps = root.query_selector(".chart .ticks-x").unwrap().unwrap().text_content().unwrap();
    assert_eq!(steps, "step 0step 100step 200");
}

#[wasm_bindgen_test]
async fn the_filter_view_offers_every_convolution() {
    // Issue 15 point 16: filters and feature maps of any Conv2D layer.
    use layerlab::worker::Event;
    let (root, _h) = mount();
    settle().await;
    let layer = one(&root, "inspect-layer").unchecked_into::<HtmlSelectElement>();
    let options: Vec<String> =
        (0..layer.length()).filter_map(|i| layer.item(i)).map(|o| o.text_content().unwrap()).collect();
    assert_eq!(options, ["0 Conv2D (32 filters)", "2 Conv2D (64 filters)", "4 Conv2D (64 filters)"]);
    layerlab::ui::deliver(Event::Inspection {
        index: 3,
        layer: 2,
        label: 7,
        image: vec![0; 784],
        filter_shape: vec![64, 32, 3, 3],
        filters: vec![0.1; 64 * 32 * 9],
        map_shape: vec![64, 11, 11],
        maps: vec![0.5; 64 * 121],
    });
    settle().await;
    let text = root.query_selector(".inspect").unwrap().unwrap().text_content().unwrap();
    assert!(text.contains("64 filters of layer 2 Conv2D (3x3, averaged over its 32 input channels)"), "{text}");
}
