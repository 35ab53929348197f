#!/usr/bin/env python3
"""End-to-end test of the page in headless Chromium, driven through chromedriver
(W3C WebDriver, Python standard library only).

Serves a Trunk build (`dist/`) on 127.0.0.1, loads the Seed CNN preset, trains for
a fixed number of steps, and checks that the loss chart has points, that the loss
fell, and that a main-thread probe saw no task longer than 200 ms while training.
Saves screenshots (light and dark) in the output folder.

usage: e2e.py DIST_DIR OUT_DIR
"""
import base64, functools, http.server, json, os, re, socket, subprocess, sys, tempfile, threading, time, urllib.request

STEPS = int(os.environ.get("E2E_STEPS", "60"))
MAX_TASK_MS = 200.0


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def thread_times():
    """CPU seconds of every thread of every Chromium process now, by
    (browser's profile folder, process type, thread name): where the cores go
    while the page trains (Linux /proc; empty elsewhere)."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    procs = {}
    for pid in (d for d in os.listdir("/proc") if d.isdigit()) if os.path.isdir("/proc") else []:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = [a for a in f.read().decode(errors="replace").split("\0") if a]
            if len(argv) == 1:
                # A child process rewrites its title: one string, spaces between.
                argv = argv[0].split(" ")
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        if argv and "chrom" in os.path.basename(argv[0]) and not any(t in argv[0] for t in ("chromedriver", "crashpad")):
            kind = next((a.split("=", 1)[1] for a in argv if a.startswith("--type=")), "browser")
            profile = next((a.split("=", 1)[1] for a in argv if a.startswith("--user-data-dir=")), None)
            procs[pid] = (ppid, kind, profile)

    def profile_of(pid):
        seen = 0
        while pid in procs and seen < 8:
            ppid, _, profile = procs[pid]
            if profile:
                return profile
            pid, seen = str(ppid), seen + 1
        return None

    times = {}
    for pid, (_, kind, _) in procs.items():
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/comm") as f:
                    name = f.read().strip()
                with open(f"/proc/{pid}/task/{tid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            key = (profile_of(pid), kind, re.sub(r"\d+$", "", name))
            times[key] = times.get(key, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return times


def busiest_threads(before, after, wall, profile, top=6):
    """The threads that used the most CPU between two `thread_times`, as a
    line: seconds per second of wall time (1.0 = a whole core), this page's
    browser first, any other browser summed."""
    used = {}
    for key, t in after.items():
        d = t - before.get(key, 0.0)
        if d > 0:
            label = f"{key[1]}/{key[2]}" if key[0] == profile else "other browsers"
            used[label] = used.get(label, 0.0) + d
    total = sum(used.values())
    parts = [f"{k} {v / wall:.2f}" for k, v in sorted(used.items(), key=lambda kv: -kv[1])[:top]]
    return f"cores busy {total / wall:.2f} (" + ", ".join(parts) + ")"


def req(method, url, body=None, timeout=120):
    data = json.dumps(body).encode() if body is not None else None
    r = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(r, timeout=timeout) as resp:
        return json.loads(resp.read())


class Page:
    def __init__(self, session):
        self.s = session
        self.profile = None

    def js(self, script, *args):
        return req("POST", self.s + "/execute/sync", {"script": script, "args": list(args)})["value"]

    def by_testid(self, testid, attr=None):
        expr = f"document.querySelector('[data-testid=\"{testid}\"]')"
        if attr:
            return self.js(f"var e={expr}; return e ? e.getAttribute('{attr}') : null;")
        return self.js(f"var e={expr}; return e ? e.textContent : null;")

    def click(self, testid):
        ok = self.js(f"var e=document.querySelector('[data-testid=\"{testid}\"]'); if(!e||e.disabled) return false; e.click(); return true;")
        assert ok, f"cannot click {testid}: missing or disabled (status: {self.by_testid('status')})"

    def user_click(self, testid):
        """A click through WebDriver's input: a trusted user gesture (which a
        browser asks for before letting a page download more than one file)."""
        el = req("POST", self.s + "/element", {"using": "css selector", "value": f"[data-testid=\"{testid}\"]"})["value"]
        req("POST", self.s + f"/element/{list(el.values())[0]}/click", {})

    def wait(self, what, predicate, timeout):
        end = time.time() + timeout
        while time.time() < end:
            v = predicate()
            if v:
                return v
            time.sleep(0.25)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; status: {self.by_testid('status')}")

    def screenshot(self, path):
        png = req("GET", self.s + "/screenshot")["value"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(png))


def main():
    dist, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    class Quiet(http.server.SimpleHTTPRequestHandler):
        """Serves dist/; under /broken/ the same page with a corrupt label file."""

        def log_message(self, *args):
            pass

        def do_GET(self):
            if self.path.startswith("/broken/"):
                if self.path.endswith("train-labels-idx1-ubyte.gz"):
                    body = b"\x1f\x8b this is not gzip"
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                self.path = self.path[len("/broken"):]
            if self.path.startswith("/plain/"):
                # The page without its FMA worker (as an older build, or a
                # failed download): the workers must load the plain one.
                if self.path.endswith("-fma_bg.wasm"):
                    self.send_error(404)
                    return
                self.path = self.path[len("/plain"):]
            super().do_GET()

    handler = functools.partial(Quiet, directory=dist)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"

    port = free_port()
    driver = subprocess.Popen([os.environ.get("CHROMEDRIVER", "chromedriver"), f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    passed, failed = 0, 0
    try:
        for _ in range(100):
            try:
                req("GET", base + "/status")
                break
            except Exception:
                time.sleep(0.1)
        downloads = tempfile.mkdtemp(prefix="layerlab-downloads-")

        def new_page(webgpu=False):
            """A browser with a fresh profile (nothing stored, no cache); with
            `webgpu`, WebGPU on (SwiftShader, Chromium's software adapter)."""
            gpu_args = ["--enable-unsafe-webgpu"] if webgpu else ["--disable-gpu"]
            profile = tempfile.mkdtemp()
            args = ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", *gpu_args, "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--window-size=1600,1400", f"--user-data-dir={profile}"]
            prefs = {"download.default_directory": downloads, "download.prompt_for_download": False}
            caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args, "prefs": prefs}}}}
            sid = req("POST", base + "/session", caps)["value"]["sessionId"]
            p = Page(f"{base}/session/{sid}")
            p.profile = profile
            return p

        page = new_page()
        req("POST", page.s + "/url", {"url": url})

        def check(name, fn):
            nonlocal passed, failed
            try:
                fn()
                passed += 1
                print(f"e2e {name} ... ok", flush=True)
            except Exception as e:
                failed += 1
                print(f"e2e {name} ... FAILED: {e}", flush=True)
                page.screenshot(os.path.join(out, f"failed-{name}.png"))
                raise

        def loads():
            page.wait("the page to mount", lambda: page.by_testid("status"), 30)
            # The tab's icon is served where the page links it.
            icon = page.js("return document.querySelector('link[rel=icon]').href;")
            with urllib.request.urlopen(icon) as r:
                assert r.status == 200 and b"<svg" in r.read(), icon
            page.wait("MNIST to load", lambda: "Ready to train" in (page.by_testid("status") or ""), 90)

        def preset():
            page.js("var s=document.querySelector('[data-testid=\"preset-select\"]'); s.value='seed-cnn'; s.dispatchEvent(new Event('change', {bubbles: true}));")
            types = page.js("return Array.from(document.querySelectorAll('[data-testid=\"layer-card\"]')).map(e => e.getAttribute('data-layer-type'));")
            assert types == ["Conv2D", "MaxPool2D", "Conv2D", "MaxPool2D", "Conv2D", "Flatten", "Dense", "Dense"], types
            assert "93,322 parameters" in page.by_testid("model-totals"), page.by_testid("model-totals")

        def trains():
            # A main-thread probe: every long task (> 50 ms) the browser reports.
            page.js("window.__tasks = []; new PerformanceObserver(l => l.getEntries().forEach(e => window.__tasks.push(e.duration))).observe({type: 'longtask'});"
                    "window.__frames = 0; (function f(){ window.__frames++; requestAnimationFrame(f); })();")
            page.click("train-button")
            page.wait(f"{STEPS} training steps", lambda: int(page.by_testid("loss-chart", "data-points") or 0) >= STEPS, 600)
            page.js("window.scrollBy(0, 200);")
            page.click("pause-button")
            page.wait("training to pause", lambda: "Paused" in (page.by_testid("status") or ""), 30)
            first, last = float(page.by_testid("loss-chart", "data-first-loss")), float(page.by_testid("loss-chart", "data-last-loss"))
            tasks = page.js("return window.__tasks;")
            frames = page.js("return window.__frames;")
            speed = page.by_testid("speed-value")
            print(f"e2e: loss {first:.3f} -> {last:.3f}; longest main-thread task {max(tasks or [0]):.0f} ms ({len(tasks)} over 50 ms); {frames} frames; {speed}; workers: {page.by_testid('workers-active')}", flush=True)
            assert last < 0.7 * first, f"the loss did not fall: {first} -> {last}"
            acc = page.wait("the accuracy after pausing", lambda: "%" in (page.by_testid("accuracy-value") or "") and page.by_testid("accuracy-value"), 30)
            print(f"e2e: test accuracy after {STEPS}+ steps: {acc}", flush=True)
            assert max(tasks or [0]) <= MAX_TASK_MS, f"a main-thread task took {max(tasks)} ms"

        def reload_restores():
            # The run is kept in the browser: a reload goes on with it, with its
            # loss chart, and the next step is the one after.
            before = page.by_testid("accuracy-value")
            chart = lambda: (int(page.by_testid("loss-chart", "data-points") or 0), page.by_testid("loss-chart", "data-first-loss"), page.by_testid("loss-chart", "data-last-loss"))
            points, first, last = chart()
            time.sleep(1)  # the checkpoint is stored right after the evaluation
            req("POST", page.s + "/url", {"url": url})
            status = page.wait("the run to continue", lambda: "Continued the run kept in this browser" in (page.by_testid("status") or "") and page.by_testid("status"), 90)
            after = page.wait("the accuracy after the reload", lambda: "%" in (page.by_testid("accuracy-value") or "") and page.by_testid("accuracy-value"), 30)
            print(f"e2e: test accuracy before the reload {before}, after {after}; loss chart {points} points, after {chart()}; status: {status}; notice: {page.by_testid('notice')}", flush=True)
            assert before == after, f"{before} != {after}"
            assert "Restored the model trained in this browser" in (page.by_testid("notice") or ""), page.by_testid("notice")
            assert f"{points} steps trained" in status, status
            assert chart() == (points, first, last), f"the loss chart after the reload: {chart()} != {(points, first, last)}"
            page.click("step-button")
            page.wait("one more step", lambda: f"Paused after {points + 1} steps" in (page.by_testid("status") or ""), 30)

        def undo_brings_the_run_back():
            # Issue 15 point 2: a trained run is kept with its model. Choosing
            # another model says so once; Undo brings the run back, as a reload does.
            n = int(page.by_testid("loss-chart", "data-points") or 0)
            assert n > 0, "a trained run to leave"
            choose(page, "preset-select", "mlp")
            told = page.wait("the notice", lambda: page.by_testid("notice"), 30)
            assert f"Changing the model starts training over; Undo brings back the trained model ({n} steps)" in told, told
            page.wait("the MLP to be ready", lambda: "Ready to train" in (page.by_testid("status") or ""), 30)
            time.sleep(1)  # the left run's checkpoint is stored as it comes
            page.click("undo-button")
            status = page.wait("the run to come back", lambda: "Continued the run kept in this browser" in (page.by_testid("status") or "") and page.by_testid("status"), 60)
            print(f"e2e: undo after leaving a {n}-step run: {status}", flush=True)
            assert f"{n} steps trained" in status, status
            assert int(page.by_testid("loss-chart", "data-points") or 0) == n
            # Left while training, between two evaluations: kept all the same,
            # with every step the worker took (at least those the page saw).
            page.click("train-button")
            page.wait("a few more steps", lambda: int(page.by_testid("loss-chart", "data-points") or 0) >= n + 8, 120)
            choose(page, "preset-select", "mlp")
            seen = int(re.search(r"\(([\d,]+) steps?\)", page.wait("the notice", lambda: page.by_testid("notice"), 30)).group(1).replace(",", ""))
            page.wait("the MLP to be ready", lambda: "Ready to train" in (page.by_testid("status") or ""), 30)
            time.sleep(1)
            page.click("undo-button")
            status = page.wait("the run to come back", lambda: "Continued the run kept in this browser" in (page.by_testid("status") or "") and page.by_testid("status"), 60)
            kept = int(re.search(r"([\d,]+) steps trained", status).group(1).replace(",", ""))
            print(f"e2e: left while training after {seen} steps seen, {kept} kept: {status}", flush=True)
            assert seen <= kept, (seen, kept)
            assert int(page.by_testid("loss-chart", "data-points") or 0) == kept

        def wait_file(name, timeout=60):
            path = os.path.join(downloads, name)
            end = time.time() + timeout
            while time.time() < end:
                if os.path.exists(path) and not os.path.exists(path + ".crdownload") and os.path.getsize(path) > 0:
                    time.sleep(0.3)
                    return path
                time.sleep(0.25)
            raise AssertionError(f"no download {name} in {downloads}: {os.listdir(downloads)}")

        def files_round_trip():
            # Download the trained reverser (a zip of model.json and weights.safetensors),
            # export it to PyTorch, start over, and open the download: the same model
            # with the same accuracy.
            seq = page.by_testid("sequence-accuracy-value")
            page.user_click("download-button")
            saved = wait_file("reverse-transformer.zip")
            import zipfile
            assert sorted(zipfile.ZipFile(saved).namelist()) == ["reverse-transformer/model.json", "reverse-transformer/weights.safetensors"], zipfile.ZipFile(saved).namelist()
            page.user_click("export-button")
            zip_path = wait_file("reverse-transformer-pytorch.zip")
            names = zipfile.ZipFile(zip_path).namelist()
            assert "reverse-transformer-pytorch/model.py" in names and "reverse-transformer-pytorch/weights.safetensors" in names, names
            page.user_click("export-keras-button")
            keras_zip = wait_file("reverse-transformer-keras.zip")
            python = os.environ.get("LAYERLAB_PYTHON")
            if python:
                for framework, path in [("pytorch", zip_path), ("keras", keras_zip)]:
                    folder = tempfile.mkdtemp()
                    zipfile.ZipFile(path).extractall(folder)
                    run = subprocess.run([python, "check.py"], cwd=os.path.join(folder, f"reverse-transformer-{framework}"), capture_output=True, text=True, env={**os.environ, "KERAS_BACKEND": "torch"})
                    print(f"e2e: the page's {framework} export: {run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ''}", flush=True)
                    assert run.returncode == 0, run.stdout + run.stderr
            else:
                print("e2e: SKIPPED running the page's PyTorch and Keras exports (no LAYERLAB_PYTHON with torch and keras)", flush=True)
            page.click("reset-button")
            page.wait("the reset", lambda: page.by_testid("sequence-accuracy-value") is None, 10)
            el = req("POST", page.s + "/element", {"using": "css selector", "value": "[data-testid=\"open-input\"]"})["value"]
            eid = list(el.values())[0]
            req("POST", page.s + f"/element/{eid}/value", {"text": saved})
            page.wait("the opened weights", lambda: "Loaded the weights" in (page.by_testid("status") or ""), 30)
            again = page.wait("the accuracy of the opened model", lambda: page.by_testid("sequence-accuracy-value"), 30)
            print(f"e2e: downloaded and opened again: {seq} -> {again} of sequences right; {page.by_testid('notice')}", flush=True)
            assert again == seq, f"{seq} != {again}"

        def lesson_opens_its_file():
            # Issue 15 point 15: a lesson link names the teacher's trained
            # weights on another site (one that allows it, CORS); a class
            # opens the lesson with them, with the same accuracy.
            import shutil
            seq = page.by_testid("sequence-accuracy-value")
            site = tempfile.mkdtemp(prefix="layerlab-class-site-")
            shutil.copy(wait_file("reverse-transformer.zip"), os.path.join(site, "reverse-transformer.zip"))

            class Cors(http.server.SimpleHTTPRequestHandler):
                def log_message(self, *args):
                    pass

                def end_headers(self):
                    self.send_header("Access-Control-Allow-Origin", "*")
                    super().end_headers()

            other_site = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), functools.partial(Cors, directory=site))
            threading.Thread(target=other_site.serve_forever, daemon=True).start()
            weights = f"http://127.0.0.1:{other_site.server_address[1]}/reverse-transformer.zip"
            other = None
            try:
                page.click("share-button")
                page.js("var i=document.querySelector('[data-testid=\"lesson-open\"]'); i.value=arguments[0]; i.dispatchEvent(new Event('input', {bubbles: true}));", weights)
                link = page.wait("the lesson link", lambda: (lambda v: v if v and "#x=" in v else None)(page.js("return document.querySelector('[data-testid=\"lesson-link\"]').value;")), 10)
                page.click("share-close")
                other = new_page()
                req("POST", other.s + "/url", {"url": link})
                told = other.wait("the lesson's file", lambda: "Opened reverse-transformer.zip" in (other.by_testid("notice") or "") and other.by_testid("notice"), 90)
                again = other.wait("its accuracy", lambda: other.by_testid("sequence-accuracy-value"), 60)
                print(f"e2e: a lesson with the teacher's weights: {told}; {again} of sequences right (the teacher's {seq})", flush=True)
                assert again == seq, f"{again} != {seq}"
            finally:
                if other:
                    req("DELETE", other.s)
                other_site.shutdown()
                shutil.rmtree(site, ignore_errors=True)

        def draw_a_one():
            # A vertical stroke down the middle of the canvas, as pointer events.
            page.js("""
                var c = document.querySelector('[data-testid="draw-canvas"]'); var r = c.getBoundingClientRect();
                function ev(type, y) { c.dispatchEvent(new PointerEvent(type, {bubbles: true, pointerId: 1, clientX: r.left + r.width / 2, clientY: r.top + y * r.height})); }
                ev('pointerdown', 0.15); for (var i = 1; i <= 14; i++) ev('pointermove', 0.15 + i * 0.05); ev('pointerup', 0.85);
            """)
            digit = page.wait("a prediction", lambda: page.by_testid("prediction-digit"), 30)
            bars = page.js("return document.querySelectorAll('[data-testid=\"prediction\"] .bar').length;")
            print(f"e2e: a vertical stroke is predicted as {digit}", flush=True)
            assert bars == 10, bars
            assert digit == "1", f"a vertical stroke should read as 1, got {digit}"

        def views():
            cells = page.wait("the confusion matrix", lambda: page.js("return document.querySelectorAll('[data-testid=\"confusion-cell\"]').length;"), 30)
            assert cells == 100, cells
            page.js("document.querySelectorAll('[data-testid=\"confusion-cell\"]')[11].click();")  # true 1, predicted 1
            n = page.wait("example digits", lambda: page.js("var e=document.querySelector('[data-testid=\"confusion-examples\"]'); return e ? e.querySelectorAll('canvas').length : 0;"), 30)
            assert n > 0, n
            page.click("inspect-button")
            filters = page.wait("the filters", lambda: page.js("var e=document.querySelector('[data-testid=\"filters\"]'); return e ? Number(e.getAttribute('data-tiles')) : 0;"), 30)
            maps = page.js("return Number(document.querySelector('[data-testid=\"feature-maps\"]').getAttribute('data-tiles'));")
            assert (filters, maps) == (32, 32), (filters, maps)
            # One atlas canvas each, as large as its tiles: 32 filters of 3x3 at 12x, 16 to a row.
            size = page.js("var c=document.querySelector('[data-testid=\"filters\"] canvas'); return [c.width, c.height];")
            assert size == [16 * 40 - 4, 2 * 40 - 4], size

        def screenshots():
            page.js("window.scrollTo(0, 0);")
            page.screenshot(os.path.join(out, "layerlab-light.png"))
            page.click("theme-toggle")
            page.screenshot(os.path.join(out, "layerlab-dark.png"))
            # Presenter mode: larger type everywhere (the root font size grows).
            size = lambda: page.js("return getComputedStyle(document.documentElement).fontSize;")
            before = size()
            page.click("presenter-toggle")
            page.wait("larger type", lambda: size() != before, 10)
            print(f"e2e: presenter mode: root font {before} -> {size()}", flush=True)
            page.screenshot(os.path.join(out, "layerlab-presenter.png"))
            page.click("presenter-toggle")
            page.wait("normal type", lambda: size() == before, 10)

        def layouts():
            # Issue 15 points 13-14: a phone, a tablet, and a projector at
            # 1400x900 and 1920x1080 (presenter mode). Nothing is wider than
            # the screen; on a projector the model, the controls and the loss
            # chart show together. Screenshots go to docs/ (layout-*.png).
            cdp = lambda cmd, params: req("POST", page.s + "/goog/cdp/execute", {"cmd": cmd, "params": params})
            if page.by_testid("intro-close"):
                page.click("intro-close")
            try:
                for w, h, presenter in [(390, 844, False), (820, 1180, False), (1400, 900, True), (1920, 1080, True)]:
                    cdp("Emulation.setDeviceMetricsOverride", {"width": w, "height": h, "deviceScaleFactor": 1, "mobile": w < 700})
                    if presenter != (page.by_testid("presenter-toggle", "aria-pressed") == "true"):
                        page.click("presenter-toggle")
                    # A teacher dismisses a notice before the class looks.
                    page.js("document.querySelectorAll('[data-testid=notice] button').forEach(b => b.click()); window.scrollTo(0, 0);")
                    time.sleep(0.5)
                    wide, inner, tall = page.js("return [document.documentElement.scrollWidth, window.innerWidth, document.documentElement.scrollHeight];")
                    page.screenshot(os.path.join(out, f"layout-{w}.png"))
                    print(f"e2e: layout at {w}x{h}{' presenter' if presenter else ''}: page {wide}x{tall} px", flush=True)
                    assert wide <= inner, f"at {w} px the page is {wide} px wide"
                    buttons = page.js("return [...document.querySelectorAll('.topbar button')].map(b => b.getBoundingClientRect().right);")
                    assert all(r <= inner for r in buttons), f"at {w} px a header button is off-screen: {buttons}"
                    if presenter:
                        bottom = lambda sel: page.js(f"var e=document.querySelector('{sel}'); return e ? e.getBoundingClientRect().bottom : 1e9;")
                        for what, sel in [("the loss chart", "[data-testid=loss-chart]"), ("Train", "[data-testid=train-button]"), ("the first layer", "[data-testid=layer-card]")]:
                            assert bottom(sel) <= h, f"at {w}x{h} {what} is below the fold ({bottom(sel):.0f} px)"
            finally:
                cdp("Emulation.clearDeviceMetricsOverride", {})
                if page.by_testid("presenter-toggle", "aria-pressed") == "true":
                    page.click("presenter-toggle")

        def invalid_stack():
            page.click("reset-button")
            page.click("palette-item-Conv2D")  # a Conv2D after Dense(10): needs an image
            err = page.wait("the layer error", lambda: page.by_testid("layer-error"), 10)
            assert "layer 8 Conv2D: expects an image" in err, err
            assert page.js("return document.querySelector('[data-testid=\"train-button\"]').disabled;"), "Train must be disabled"
            page.click("undo-button")
            page.wait("the error to go", lambda: page.by_testid("layer-error") is None, 10)

        def corrupt_data():
            req("POST", page.s + "/url", {"url": url + "broken/"})
            msg = page.wait("the data error", lambda: "could not be loaded" in (page.by_testid("status") or "") and page.by_testid("status"), 60)
            assert "train-labels-idx1-ubyte.gz" in msg and "damaged" in msg, msg
            assert page.js("return document.querySelector('[data-testid=\"train-button\"]').disabled;"), "Train must be disabled"
            assert len(page.js("return document.querySelectorAll('[data-testid=\"layer-card\"]');")) > 0, "the builder still works"

        def sequence_presets_train():
            # W2 (row LSTM) and W3 (tiny ViT) train in the page: a few steps, loss falls.
            for name in ["seed-lstm", "tiny-vit"]:
                page.js(f"var s=document.querySelector('[data-testid=\"preset-select\"]'); s.value='{name}'; s.dispatchEvent(new Event('change', {{bubbles: true}}));")
                page.wait(f"{name} to be ready", lambda: "Ready to train" in (page.by_testid("status") or ""), 30)
                page.click("train-button")
                page.wait(f"{name}: 40 steps", lambda: int(page.by_testid("loss-chart", "data-points") or 0) >= 40, 300)
                page.click("pause-button")
                page.wait("training to pause", lambda: "Paused" in (page.by_testid("status") or ""), 30)
                first, last = float(page.by_testid("loss-chart", "data-first-loss")), float(page.by_testid("loss-chart", "data-last-loss"))
                print(f"e2e: {name} in the page: loss {first:.3f} -> {last:.3f}, {page.by_testid('speed-value')}", flush=True)
                assert last < 0.8 * first, f"{name}: the loss did not fall: {first} -> {last}"
                if name == "seed-lstm":
                    # The hidden-state view follows training: 28 steps (rows) of 128 units.
                    page.click("hidden-button")
                    page.wait("hidden states", lambda: page.js("var l=document.querySelector('[data-testid=\"hidden-layer\"]'); return l && l.getAttribute('data-steps') + 'x' + l.getAttribute('data-units');") == "28x128", 30)
                    page.js("document.querySelector('[data-testid=\"hidden-panel\"]').scrollIntoView();")
                    page.screenshot(os.path.join(out, "layerlab-hidden.png"))
                else:
                    # ViT attention on the digit's 4x4 patch grid; a click picks the looking patch.
                    page.click("attention-button")
                    page.wait("ViT attention on patches", lambda: page.js("return document.querySelectorAll('canvas.patches').length;") == 8, 30)
                    page.js("var c=document.querySelector('canvas.patches'); var r=c.getBoundingClientRect(); c.dispatchEvent(new MouseEvent('click', {bubbles: true, clientX: r.left + r.width*0.4, clientY: r.top + r.height*0.6}));")
                    page.wait("the picked patch", lambda: "where patch 9 (row 3, column 2) looks" in (page.by_testid("attention-query") or ""), 10)
                    page.js("document.querySelector('[data-testid=\"attention-panel\"]').scrollIntoView();")
                    page.screenshot(os.path.join(out, "layerlab-vit-attention.png"))

        def reverse_attention():
            page.js("var s=document.querySelector('[data-testid=\"preset-select\"]'); s.value='reverse-transformer'; s.dispatchEvent(new Event('change', {bubbles: true}));")
            page.wait("the attention panel", lambda: page.by_testid("attention-panel"), 10)
            assert "reverse task" in page.by_testid("input-card"), page.by_testid("input-card")
            page.click("train-button")
            seq = page.wait("99 % of sequences right", lambda: (lambda v: v if v and float(v.split()[0]) >= 99.0 else None)(page.by_testid("sequence-accuracy-value")), 300)
            page.click("pause-button")
            page.wait("training to pause", lambda: "Paused" in (page.by_testid("status") or ""), 30)
            page.click("attention-button")
            page.wait("attention maps", lambda: page.js("return document.querySelectorAll('[data-testid=\"attention-maps\"] table.attn-grid').length;") == 8, 30)
            # The last layer's map (summed over heads) peaks on the anti-diagonal:
            # output position i looks at input position T-1-i, for >= 90 % of i.
            peaks = [int(p) for p in page.js("var l=document.querySelectorAll('[data-testid=\"attention-layer\"]'); return l[l.length-1].getAttribute('data-peaks');").split()]
            hits = sum(1 for i, p in enumerate(peaks) if p == len(peaks) - 1 - i)
            print(f"e2e: reverse task: {seq} of sequences right after {page.by_testid('loss-chart', 'data-points')} chart points; tokens {page.by_testid('attention-tokens')}; last layer peaks {peaks}", flush=True)
            assert hits * 10 >= len(peaks) * 9, f"the last attention layer's peaks {peaks} are not the anti-diagonal"
            # ... and the page shows it: in the last layer's first head, the cell for
            # (output 0, input T-1) is coloured more strongly than (output 0, input 0).
            colours = page.js("var l=document.querySelectorAll('[data-testid=\"attention-layer\"]'); var tds=l[l.length-1].querySelectorAll('table.attn-grid tr')[1].querySelectorAll('td'); return [getComputedStyle(tds[0]).backgroundColor, getComputedStyle(tds[tds.length-1]).backgroundColor];")
            alpha = lambda c: float(c.split("/")[1].strip(" )")) if "/" in c else (0.0 if c.startswith("rgba") else 1.0)
            assert alpha(colours[1]) > alpha(colours[0]), f"the mirrored position is not the strongest cell: {colours}"
            page.js("document.querySelector('[data-testid=\"attention-panel\"]').scrollIntoView();")
            page.screenshot(os.path.join(out, "layerlab-attention.png"))

        def choose(p, testid, value):
            p.js(f"var s=document.querySelector('[data-testid=\"{testid}\"]'); s.value='{value}'; s.dispatchEvent(new Event('change', {{bubbles: true}}));")

        def step_curve(p, steps):
            """Presses Step `steps` times; the loss chart's first and last means."""
            p.wait("ready to train", lambda: "Ready to train" in (p.by_testid("status") or ""), 90)
            for i in range(steps):
                p.click("step-button")
                p.wait(f"step {i + 1}", lambda: int(p.by_testid("loss-chart", "data-points") or 0) >= i + 1, 30)
            return p.by_testid("loss-chart", "data-first-loss"), p.by_testid("loss-chart", "data-last-loss")

        def fma_worker():
            # Chromium has relaxed SIMD: the page's workers run the build with
            # fused multiply-adds, and the backend line says so. Where that file
            # cannot be loaded (under /plain/ the server has none) they run the
            # plain build, and take the same steps to float tolerance.
            curves, kernels = {}, {}
            for path in ["", "plain/"]:
                p = new_page()
                try:
                    req("POST", p.s + "/url", {"url": url + path})
                    p.wait("MNIST", lambda: "Ready to train" in (p.by_testid("status") or ""), 90)
                    kernels[path] = p.wait("the CPU line", lambda: p.by_testid("backend-active", "data-cpu"), 30)
                    choose(p, "preset-select", "seed-cnn")
                    p.click("reset-button")
                    curves[path] = step_curve(p, 20)
                finally:
                    req("DELETE", p.s)
            print(f"e2e: the workers' kernels: {kernels['']!r}, without the FMA file {kernels['plain/']!r}; Seed CNN, 20 steps (first, last 10 mean loss): {curves['']} and {curves['plain/']}", flush=True)
            assert kernels[""] == "WebAssembly SIMD with FMA", kernels
            assert kernels["plain/"] == "WebAssembly SIMD", kernels
            assert close_curves(curves[""], curves["plain/"], 1e-3), curves

        def page_speed():
            # Not a check: figures (run only when E2E_ONLY names it; see
            # scripts/page_vs_torch.py). Training samples/s of each preset
            # (E2E_SPEED_PRESETS), each number of workers (E2E_SPEED_WORKERS)
            # and each build of the worker (E2E_SPEED_BUILDS: fma, the page as
            # served; plain, without the FMA file), from the loss chart's
            # steps over wall time between steps 80 and 380 (the split is
            # measured on steps 1-8 and 59-66; the evaluations at steps 100,
            # 200 and 300 are in it, as they are for a user), and the page's
            # own figure then ("shown": training only, as PyTorch's harness
            # times it). One line each, "e2e-speed {json}".
            env = lambda k, d: [v for v in os.environ.get(k, d).split(",") if v]
            presets = env("E2E_SPEED_PRESETS", "seed-cnn,seed-lstm,tiny-vit")
            counts = [int(n) for n in env("E2E_SPEED_WORKERS", "1,2")]
            builds = env("E2E_SPEED_BUILDS", "fma,plain")
            first, last = 80, 380
            for build in builds:
                sp = new_page()
                try:
                    req("POST", sp.s + "/url", {"url": url + ("plain/" if build == "plain" else "")})
                    sp.wait("MNIST", lambda: "Ready to train" in (sp.by_testid("status") or ""), 90)
                    kernels = sp.wait("the CPU line", lambda: sp.by_testid("backend-active", "data-cpu"), 30)
                    cores = int(sp.js("return navigator.hardwareConcurrency;"))
                    for preset in presets:
                        choose(sp, "preset-select", preset)
                        for n in counts:
                            choose(sp, "workers-select", str(n))
                            sp.wait(f"{n} workers", lambda: sp.by_testid("workers-active", "data-running") == str(n), 60)
                            sp.click("reset-button")
                            sp.wait("ready to train", lambda: "Ready to train" in (sp.by_testid("status") or ""), 60)
                            sp.click("train-button")
                            points = lambda: int(sp.by_testid("loss-chart", "data-points") or 0)
                            sp.wait(f"{first} steps", lambda: points() >= first, 600)
                            p0, t0, cpu0 = points(), time.time(), thread_times()
                            sp.wait(f"{last} steps", lambda: points() >= last, 600)
                            p1, wall = points(), time.time() - t0
                            # The page's own figure: training only, the evaluations left out.
                            shown = sp.by_testid("speed-value")
                            cpu = busiest_threads(cpu0, thread_times(), wall, sp.profile)
                            batch = int(sp.js("var e=document.querySelector('[data-testid=\"batch-input\"]'); return e ? Number(e.value) : 64;") or 64)
                            line = {"build": build, "kernels": kernels, "preset": preset, "workers": n, "cores": cores,
                                    "steps": p1 - p0, "seconds": round(wall, 3), "samples_per_s": round((p1 - p0) * batch / wall, 1), "shown": shown,
                                    "workers_line": sp.by_testid("workers-active"), "threads": cpu}
                            print("e2e-speed " + json.dumps(line), flush=True)
                            sp.click("pause-button")
                            sp.wait("training to pause", lambda: "Paused" in (sp.by_testid("status") or ""), 60)
                finally:
                    req("DELETE", sp.s)

        def close_curves(a, b, tol=1e-4):
            return all(abs(float(x) - float(y)) <= tol * max(1.0, abs(float(y))) for x, y in zip(a, b))

        def share_links():
            # An experiment set up here opens, the same, in a fresh browser profile
            # from its share link, and Step reproduces the same losses.
            choose(page, "preset-select", "reverse-lstm")
            choose(page, "seed-input", "3")
            page.click("fold-hidden")
            page.click("reset-button")
            here = step_curve(page, 12)
            page.click("share-button")
            link = page.wait("the share link", lambda: page.js("var e=document.querySelector('[data-testid=\"share-link\"]'); return e && e.value;"), 10)
            page.js("var t=document.querySelector('[data-testid=\"lesson-title\"]'); t.value='Reversing with an LSTM'; t.dispatchEvent(new Event('input', {bubbles: true}));")
            page.js("document.querySelector('[data-testid=\"lesson-hide-settings\"]').click();")
            lesson_link = page.wait("the lesson link", lambda: (lambda v: v if v and v != link else None)(page.js("return document.querySelector('[data-testid=\"lesson-link\"]').value;")), 10)
            page.click("share-close")
            print(f"e2e: share link {len(link)} characters, lesson link {len(lesson_link)}", flush=True)
            other = new_page()
            try:
                req("POST", other.s + "/url", {"url": link})
                other.wait("the shared model", lambda: other.js("return Array.from(document.querySelectorAll('[data-testid=\"layer-card\"]')).map(e => e.getAttribute('data-layer-type')).join(',');") == "Embedding,LSTM,Dense", 30)
                assert other.js("return document.querySelector('[data-testid=\"seed-input\"]').value;") == "3"
                assert other.js("return !!document.querySelector('.hidden-states.folded');"), "the hidden-state panel is folded as in the link"
                assert "Opened a shared experiment" in (other.by_testid("notice") or ""), other.by_testid("notice")
                there = step_curve(other, 12)
                print(f"e2e: loss curve here {here}, from the link in a fresh profile {there}", flush=True)
                # To float rounding: the page splits steps across its workers
                # where that is faster, as measured (a run's first steps), so
                # the sums' order may differ.
                assert close_curves(here, there), f"the run from the link differs: {here} vs {there}"
                # The lesson link: title on top, model and settings fixed, still trains.
                req("POST", other.s + "/url", {"url": "about:blank"})
                req("POST", other.s + "/url", {"url": lesson_link})
                other.wait("the lesson", lambda: other.by_testid("lesson-title-shown") == "Reversing with an LSTM", 30)
                assert other.by_testid("preset-select") is None and other.by_testid("palette-item-Dense") is None, "the palette is hidden"
                assert "seed 3" in (other.by_testid("settings-summary") or ""), other.by_testid("settings-summary")
                other.click("reset-button")
                lesson = step_curve(other, 12)
                assert close_curves(lesson, here), f"the lesson trains the same experiment: {lesson} vs {here}"
                other.screenshot(os.path.join(out, "layerlab-lesson.png"))
            finally:
                req("DELETE", other.s)

        def offline():
            # The service worker has cached the page, its code and MNIST: with the
            # server gone, a reload still loads, and trains.
            page.wait("the service worker", lambda: page.js("return !!(navigator.serviceWorker && navigator.serviceWorker.controller);"), 60)
            server.shutdown()
            server.server_close()
            req("POST", page.s + "/url", {"url": url})
            page.wait("the page from the cache", lambda: page.by_testid("status"), 30)
            page.wait("MNIST from the cache", lambda: "Ready to train" in (page.by_testid("status") or ""), 90)
            choose(page, "preset-select", "mlp")
            page.click("train-button")
            page.wait("30 steps offline", lambda: int(page.by_testid("loss-chart", "data-points") or 0) >= 30, 120)
            page.click("pause-button")
            first, last = float(page.by_testid("loss-chart", "data-first-loss")), float(page.by_testid("loss-chart", "data-last-loss"))
            print(f"e2e: offline, from the service worker's cache: loss {first:.3f} -> {last:.3f}", flush=True)
            assert last < 0.8 * first, f"{first} -> {last}"

        def backend(p):
            return p.by_testid("backend-active", "data-active")

        def webgpu_trains():
            # With WebGPU chosen, the Seed CNN, Seed LSTM and Tiny ViT take the
            # same first steps on WebGPU as on the CPU (Step, so both runs see the
            # same batches).
            gp = new_page(webgpu=True)
            try:
                req("POST", gp.s + "/url", {"url": url})
                gp.wait("MNIST", lambda: "Ready to train" in (gp.by_testid("status") or ""), 90)
                choose(gp, "backend-select", "webgpu")
                gp.wait("the WebGPU backend", lambda: backend(gp) == "webgpu", 60)
                print(f"e2e: backend {gp.by_testid('backend-active')}", flush=True)
                for name in ["seed-cnn", "seed-lstm", "tiny-vit"]:
                    choose(gp, "preset-select", name)
                    started = time.time()
                    on_gpu = step_curve(gp, 4)
                    gpu_s = time.time() - started
                    assert backend(gp) == "webgpu", f"{name}: the run left WebGPU: {gp.by_testid('backend-notice')}"
                    choose(gp, "backend-select", "cpu")
                    gp.wait("the CPU backend", lambda: backend(gp) == "cpu", 30)
                    gp.click("reset-button")
                    on_cpu = step_curve(gp, 4)
                    print(f"e2e: {name}, 4 steps: WebGPU loss chart (first, last) {on_gpu} ({gpu_s:.1f} s), CPU {on_cpu}", flush=True)
                    for a, b in zip(on_gpu, on_cpu):
                        assert abs(float(a) - float(b)) <= 1e-3 * max(1.0, abs(float(b))), f"{name}: WebGPU {on_gpu} vs CPU {on_cpu}"
                    choose(gp, "backend-select", "webgpu")
                    gp.wait("WebGPU again", lambda: backend(gp) == "webgpu", 60)
                # Training (not stepping) runs in the worker on WebGPU, with the views.
                # Its 4 CPU steps were kept when the page left it: they go on.
                choose(gp, "preset-select", "seed-cnn")
                gp.wait("ready to train", lambda: any(t in (gp.by_testid("status") or "") for t in ("Ready to train", "Continued the run")), 30)
                gp.click("train-button")
                gp.wait("12 steps on WebGPU", lambda: int(gp.by_testid("loss-chart", "data-points") or 0) >= 12, 600)
                gp.click("pause-button")
                gp.wait("training to pause", lambda: "Paused" in (gp.by_testid("status") or ""), 60)
                first, last = float(gp.by_testid("loss-chart", "data-first-loss")), float(gp.by_testid("loss-chart", "data-last-loss"))
                acc = gp.wait("the accuracy", lambda: "%" in (gp.by_testid("accuracy-value") or "") and gp.by_testid("accuracy-value"), 60)
                print(f"e2e: Seed CNN trained on WebGPU: loss {first:.3f} -> {last:.3f}, accuracy {acc}, {gp.by_testid('speed-value')}", flush=True)
                assert last < first, f"{first} -> {last}"
                gp.screenshot(os.path.join(out, "layerlab-webgpu.png"))
            finally:
                req("DELETE", gp.s)

        def webgpu_fallback():
            gp = new_page(webgpu=True)
            try:
                # No adapter: training runs on the CPU; one quiet line says so
                # (the reason behind "Why?"), no red notice.
                req("POST", gp.s + "/url", {"url": url + "?gpu=unavailable"})
                gp.wait("MNIST", lambda: "Ready to train" in (gp.by_testid("status") or ""), 90)
                notice = gp.wait("the quiet line", lambda: "WebGPU is not available" in (gp.by_testid("backend-active") or "") and gp.by_testid("backend-active"), 30)
                assert backend(gp) == "cpu" and not gp.by_testid("backend-notice"), (backend(gp), gp.by_testid("backend-notice"))
                assert "simulated" in (gp.by_testid("backend-why") or ""), gp.by_testid("backend-why")
                choose(gp, "preset-select", "mlp")
                gp.click("train-button")
                gp.wait("20 steps on the CPU", lambda: int(gp.by_testid("loss-chart", "data-points") or 0) >= 20, 120)
                gp.click("pause-button")
                print(f"e2e: no adapter: {notice}", flush=True)
                # The device is lost mid-training (after 30 steps): training goes on
                # on the CPU from the last checkpoint (step 25), with a notice.
                req("POST", gp.s + "/url", {"url": url + "?gpu=lose:30"})
                # The paused MLP run may have been kept in this profile before the
                # page was left (Pause keeps it, asynchronously): then the page
                # continues it instead; Reset below starts over either way.
                gp.wait("MNIST", lambda: any(s in (gp.by_testid("status") or "") for s in ("Ready to train", "Continued the run kept in this browser")), 90)
                choose(gp, "backend-select", "webgpu")
                gp.wait("the WebGPU backend", lambda: backend(gp) == "webgpu", 60)
                gp.click("reset-button")
                gp.click("train-button")
                lost = gp.wait("the device-lost notice", lambda: "WebGPU stopped working" in (gp.by_testid("backend-notice") or "") and gp.by_testid("backend-notice"), 300)
                assert backend(gp) == "cpu", backend(gp)
                gp.wait("60 steps", lambda: int(gp.by_testid("loss-chart", "data-points") or 0) >= 60, 300)
                gp.click("pause-button")
                first, last = float(gp.by_testid("loss-chart", "data-first-loss")), float(gp.by_testid("loss-chart", "data-last-loss"))
                print(f"e2e: device lost: {lost}; loss {first:.3f} -> {last:.3f}", flush=True)
                assert "from the weights of step 25" in lost, lost
                assert last < 0.8 * first, f"{first} -> {last}"
            finally:
                req("DELETE", gp.s)

        def auto_measures():
            # Auto measures the model on WebGPU and on the CPU when training
            # starts and trains on the faster, saying both figures; a backend
            # forced slow (?gpu=slow:cpu / slow:gpu) loses either way.
            gp = new_page(webgpu=True)
            try:
                for query, want in [("", None), ("?gpu=slow:cpu", "webgpu"), ("?gpu=slow:gpu", "cpu")]:
                    req("POST", gp.s + "/url", {"url": url + query})
                    gp.wait("MNIST", lambda: any(s in (gp.by_testid("status") or "") for s in ("Ready to train", "Continued the run kept in this browser")), 90)
                    choose(gp, "backend-select", "auto")
                    choose(gp, "preset-select", "mlp")
                    gp.click("reset-button")
                    gp.wait("ready to train", lambda: "Ready to train" in (gp.by_testid("status") or ""), 30)
                    pending = gp.wait("Auto's adapter", lambda: "Auto measures WebGPU" in (gp.by_testid("backend-active") or "") and gp.by_testid("backend-active"), 60)
                    gp.click("train-button")
                    line = gp.wait("the measurement", lambda: "samples/s" in (gp.by_testid("backend-active") or "") and gp.by_testid("backend-active"), 120)
                    gp.wait("training", lambda: int(gp.by_testid("loss-chart", "data-points") or 0) >= 5, 120)
                    gp.click("pause-button")
                    print(f"e2e: Auto{query or ' (as measured)'}: {pending!r} -> {line!r}", flush=True)
                    using = "webgpu" if "using WebGPU" in line else "cpu"
                    assert backend(gp) == using, (backend(gp), line)
                    if want:
                        assert using == want, (query, line)
            finally:
                req("DELETE", gp.s)

        def workers_train():
            # On the CPU each batch is split across the page's workers (one per
            # core by default): 2 workers take the same 20 Seed CNN steps as 1,
            # to float tolerance; a browser whose workers cannot start workers
            # trains in one and says why.
            wp = new_page()
            try:
                req("POST", wp.s + "/url", {"url": url})
                wp.wait("MNIST", lambda: "Ready to train" in (wp.by_testid("status") or ""), 90)
                cores = int(wp.js("return navigator.hardwareConcurrency;"))
                options = int(wp.js("return document.querySelector('[data-testid=\"workers-select\"]').options.length;"))
                assert options == max(1, min(cores, 8)), f"{options} choices for {cores} cores"
                counts = [2, 1] if cores >= 2 else [1]
                curves, speeds, accuracy = {}, {}, {}
                choose(wp, "preset-select", "seed-cnn")
                for n in counts:
                    choose(wp, "workers-select", str(n))
                    wp.wait(f"{n} workers", lambda: wp.by_testid("workers-active", "data-running") == str(n), 60)
                    wp.click("reset-button")
                    curves[n] = step_curve(wp, 20)
                    if n > 1:
                        # Steps 1-4 whole, 5-8 split: measured, and said.
                        wp.wait("the measurement", lambda: "samples/s" in (wp.by_testid("workers-active") or ""), 30)
                    # The training rate from the chart's steps over wall time (a
                    # figure to report, not to assert: timings vary).
                    wp.click("train-button")
                    points = lambda: int(wp.by_testid("loss-chart", "data-points") or 0)
                    wp.wait("50 steps", lambda: points() >= 50, 300)
                    p0, t0, cpu0 = points(), time.time(), thread_times()
                    wp.wait("250 steps", lambda: points() >= 250, 600)
                    wall, cpu = time.time() - t0, busiest_threads(cpu0, thread_times(), time.time() - t0, wp.profile)
                    speeds[n] = f"{(points() - p0) * 64 / wall:,.0f} samples/s ({wp.by_testid('workers-active')}; {cpu})"
                    # The evaluation after step 200 (split across the workers
                    # when they are 2), before Pause evaluates again.
                    accuracy[n] = wp.by_testid("accuracy-value")
                    assert float(accuracy[n].split()[0]) >= 80.0, f"{n} workers: test accuracy {accuracy[n]} after 200 steps"
                    wp.click("pause-button")
                    wp.wait("training to pause", lambda: "Paused" in (wp.by_testid("status") or ""), 60)
                print(f"e2e: {cores} cores; Seed CNN, 20 steps (first, last 10 mean loss) and speed: " + "; ".join(f"{n} workers {curves[n]} {speeds[n]}, test accuracy after step 200 {accuracy[n]}" for n in counts), flush=True)
                if len(counts) == 2:
                    assert close_curves(curves[2], curves[1], 1e-3), f"2 workers {curves[2]} vs 1 {curves[1]}"
                # A browser whose workers cannot start workers.
                req("POST", wp.s + "/url", {"url": url + "?workers=unavailable"})
                wp.wait("MNIST", lambda: any(t in (wp.by_testid("status") or "") for t in ("Ready to train", "Continued the run")), 90)
                choose(wp, "workers-select", "1")
                if len(counts) == 2:
                    choose(wp, "workers-select", "2")
                    line = wp.wait("the note", lambda: "cannot start workers" in (wp.by_testid("workers-active") or "") and wp.by_testid("workers-active"), 60)
                    print(f"e2e: no workers from a worker: {line}", flush=True)
                    assert wp.by_testid("workers-active", "data-running") == "1"
                wp.click("reset-button")
                step_curve(wp, 3)
                if len(counts) == 2:
                    # A helper that fails (an uncaught error in it, on the second
                    # part it gets: step 6): the run goes on in this worker, the
                    # line says why, and the page does not take it for the
                    # training worker's own failure.
                    req("POST", wp.s + "/url", {"url": url + "?workers=fail:2"})
                    wp.wait("MNIST", lambda: any(t in (wp.by_testid("status") or "") for t in ("Ready to train", "Continued the run")), 90)
                    choose(wp, "workers-select", "1")
                    choose(wp, "workers-select", "2")
                    wp.wait("2 workers", lambda: wp.by_testid("workers-active", "data-running") == "2", 60)
                    wp.click("reset-button")
                    step_curve(wp, 10)
                    line = wp.wait("the failure said", lambda: "failed" in (wp.by_testid("workers-active") or "") and wp.by_testid("workers-active"), 30)
                    print(f"e2e: a helper failed: {line}; status: {wp.by_testid('status')}", flush=True)
                    assert wp.by_testid("workers-active", "data-running") == "1"
                    assert "stopped with an error" not in (wp.by_testid("status") or ""), wp.by_testid("status")
            finally:
                req("DELETE", wp.s)

        def one_epoch():
            # Optional (E2E_EPOCH=1): a whole epoch of the Seed CNN in the page.
            page.click("reset-button")
            started = time.time()
            page.click("train-button")
            page.wait("the epoch to finish", lambda: "complete" in (page.by_testid("status") or ""), 1200)
            acc = page.by_testid("accuracy-value")
            print(f"e2e: one epoch in the page: test accuracy {acc} after {time.time() - started:.0f} s ({page.by_testid('speed-value')})", flush=True)
            assert float(acc.split()[0]) >= 98.0, acc

        checks = [("loads", loads), ("preset", preset), ("trains", trains), ("reload_restores", reload_restores), ("undo_brings_the_run_back", undo_brings_the_run_back), ("draw_a_one", draw_a_one), ("views", views), ("screenshots", screenshots), ("layouts", layouts), ("invalid_stack", invalid_stack)]
        if os.environ.get("E2E_EPOCH") == "1":
            checks.append(("one_epoch", one_epoch))
        checks.append(("sequence_presets_train", sequence_presets_train))
        checks.append(("reverse_attention", reverse_attention))
        checks.append(("files_round_trip", files_round_trip))
        checks.append(("lesson_opens_its_file", lesson_opens_its_file))
        checks.append(("share_links", share_links))
        checks.append(("webgpu_trains", webgpu_trains))
        checks.append(("webgpu_fallback", webgpu_fallback))
        checks.append(("auto_measures", auto_measures))
        checks.append(("workers_train", workers_train))
        checks.append(("fma_worker", fma_worker))
        checks.append(("corrupt_data", corrupt_data))
        checks.append(("offline", offline))
        only = [n for n in os.environ.get("E2E_ONLY", "").split(",") if n]
        if "page_speed" in only:
            checks.append(("page_speed", page_speed))
        for name, fn in checks:
            if not only or name == "loads" or name in only:
                check(name, fn)
        req("DELETE", page.s)
    except Exception:
        pass
    finally:
        os.killpg(driver.pid, 9)
        server.shutdown()
    print(f"e2e: {passed} passed, {failed} failed")
    sys.exit(1 if failed or passed == 0 else 0)


if __name__ == "__main__":
    main()
