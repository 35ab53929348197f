// layerlab's service worker: after the first visit the page works with no
// network. It keeps the page, its code, the training worker and MNIST in a cache.
//
// - The page (navigations) and the training worker's files: network first, so a
//   new version is picked up whenever there is a connection, and page and worker
//   stay the same version; after 4 s without an answer, or offline, the cache.
// - Everything else of this site (the page's hashed JS/wasm/CSS, MNIST): the
//   cache first, so a second visit on a poor connection loads from the cache.
const CACHE = "layerlab-v1";
const TIMEOUT_MS = 4000;
const MNIST = [
  "mnist/train-images-idx3-ubyte.gz",
  "mnist/train-labels-idx1-ubyte.gz",
  "mnist/t10k-images-idx3-ubyte.gz",
  "mnist/t10k-labels-idx1-ubyte.gz",
];
const WORKER_FILES = ["layerlab-worker.js", "layerlab-worker_bg.wasm", "layerlab-worker-fma_bg.wasm"];

// The page's own files, read from its index.html (their names carry Trunk's hashes).
async function pageFiles(html) {
  const names = new Set();
  for (const m of html.matchAll(/(?:href|src)="([^"#?]+)"/g)) {
    const url = m[1];
    // As written (absolute, under Trunk's public URL, or relative to the page).
    if (!url.startsWith("http") && !url.startsWith("data:")) names.add(url);
  }
  return [...names];
}

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    const index = await fetch("./", { cache: "no-cache" });
    const html = await index.clone().text();
    await cache.put("./", index);
    const files = [...(await pageFiles(html)), ...WORKER_FILES, ...MNIST];
    // One file that cannot be fetched must not stop the others.
    await Promise.all(files.map((f) => cache.add(f).catch(() => undefined)));
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) if (key !== CACHE) await caches.delete(key);
    await self.clients.claim();
  })());
});

function withTimeout(promise, ms) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("timeout")), ms);
    promise.then((v) => { clearTimeout(timer); resolve(v); }, (e) => { clearTimeout(timer); reject(e); });
  });
}

async function networkFirst(request, key) {
  const cache = await caches.open(CACHE);
  try {
    const response = await withTimeout(fetch(request), TIMEOUT_MS);
    if (response.ok) await cache.put(key, response.clone());
    return response;
  } catch (e) {
    const cached = await cache.match(key);
    if (cached) return cached;
    throw e;
  }
}

async function cacheFirst(request) {
  const cache = await caches.open(CACHE);
  const cached = await cache.match(request);
  if (cached) return cached;
  const response = await fetch(request);
  if (response.ok) await cache.put(request, response.clone());
  return response;
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  if (request.mode === "navigate") {
    // Any page address (with a share link in its fragment or not) is the page.
    event.respondWith(networkFirst(request, "./"));
  } else if (WORKER_FILES.some((f) => url.pathname.endsWith("/" + f))) {
    event.respondWith(networkFirst(request, request));
  } else {
    event.respondWith(cacheFirst(request));
  }
});
