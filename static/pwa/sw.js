// Spare Cycles service worker: makes the site installable and the volunteer page
// usable offline. Served at /sw.js (scope: the whole site) by web/views.py, which
// puts `self.SPARECYCLES_SW = {...}` (web/pwa.py: cache names and URLs) before this.
//
// Caches (all named "sparecycles-…"; activation deletes any other of ours):
//   shell-<build>          the volunteer page, offline page, manifest, our CSS/JS/icons;
//                          <build> hashes every one of them, so a change installs anew
//   runtime-pyodide-<ver>  the Pyodide runtime, stored whole by the page that read it
//                          (or by "cache-runtime"); its URL carries the version. The page
//                          also keeps this device's memory snapshot of the runtime here
//                          (<runtime>/memory-snapshot/<frame version>, compute-host.js);
//                          nothing fetches that URL
//   apps-v1                app code (/apps/<name>/<version>/code: immutable, sha256-checked)
// Strategies: pages network-first (cached copy after a few seconds or offline, else the
// offline page); shell files, runtime and app code cache-first. Everything else — the
// WebSocket, POSTs, the admin, other sites' pages — is left alone.

const CONFIG = self.SPARECYCLES_SW;
if (!CONFIG) {
  throw new Error("Register the service worker as /sw.js: it carries the configuration.");
}
const NAVIGATION_TIMEOUT_MS = 4_000;   // then a cached page beats a crawling network
const APPS_CACHE_LIMIT = 64;
const OUR_CACHES = new Set([CONFIG.shellCache, CONFIG.runtimeCache, CONFIG.appsCache]);
const SHELL_PATHS = new Set(CONFIG.shell);
const SHELL_PAGES = new Set([CONFIG.startUrl, CONFIG.offlineUrl]);

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CONFIG.shellCache);
    // "reload" skips the HTTP cache: this build must store this build's bytes.
    await cache.addAll(CONFIG.shell.map((url) => new Request(url, { cache: "reload" })));
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith(CONFIG.cachePrefix) && !OUR_CACHES.has(name)) await caches.delete(name);
    }
    if (self.registration.navigationPreload) await self.registration.navigationPreload.enable();
    // Control the page that registered us at once, so its first Start already caches the runtime.
    await self.clients.claim();
  })());
});

self.addEventListener("fetch", (event) => {
  const { request } = event;
  if (request.method !== "GET" || request.headers.has("range")) return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === "navigate") {
    event.respondWith(page(event, url));
  } else if (url.pathname.startsWith(CONFIG.runtimeBase)) {
    // The page stores the runtime itself (compute-host.js: keepRuntime), all of it, from
    // the bytes it read: one write, and done before its first result is sent.
    event.respondWith(cacheFirst(event, CONFIG.runtimeCache, { store: false }));
  } else if (url.pathname.startsWith(CONFIG.appsPrefix) && url.pathname.endsWith("/code")) {
    event.respondWith(appCode(event));
  } else if (SHELL_PATHS.has(url.pathname)) {
    event.respondWith(shellFile(event));
  }
});

self.addEventListener("message", (event) => {
  const message = event.data || {};
  const reply = (data) => event.ports[0]?.postMessage(data);
  if (message.type === "status") {
    event.waitUntil(runtimeCached().then((cached) => reply({
      build: CONFIG.build, shellCache: CONFIG.shellCache, runtimeCache: CONFIG.runtimeCache,
      runtimeCached: cached,
    })));
  } else if (message.type === "cache-runtime") {
    event.waitUntil(cacheRuntime().then(() => reply({ ok: true }), (error) => reply({
      ok: false, error: String(error),
    })));
  }
});

function delay(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function cacheable(response) {
  return response && response.status === 200 && response.type === "basic" && !response.redirected;
}

/** Pages: the network first (fresh config), a cached copy when it is slow or gone. */
async function page(event, url) {
  const cache = await caches.open(CONFIG.shellCache);
  const key = SHELL_PAGES.has(url.pathname) ? url.pathname : null;
  let settle;
  event.waitUntil(new Promise((resolve) => { settle = resolve; }));
  const network = (async () => {
    try {
      const response = (await event.preloadResponse) || (await fetch(event.request));
      // Keep the newest copy of the shell pages (the page carries the client's configuration).
      settle(key && cacheable(response) ? cache.put(key, response.clone()).catch(() => {}) : null);
      return response;
    } catch (error) {
      settle(null);
      throw error;
    }
  })();
  network.catch(() => {});
  const cached = key ? await cache.match(key, { ignoreSearch: true }) : null;
  try {
    if (!cached) return await network;
    return await Promise.race([network, delay(NAVIGATION_TIMEOUT_MS).then(() => cached)]);
  } catch {
    return cached || (await cache.match(CONFIG.offlineUrl)) || Response.error();
  }
}

async function cacheFirst(event, cacheName, { store = true } = {}) {
  const cache = await caches.open(cacheName);
  const cached = await cache.match(event.request, { ignoreVary: true, ignoreSearch: true });
  if (cached) return cached;
  const response = await fetch(event.request);
  if (store && cacheable(response)) event.waitUntil(cache.put(event.request, response.clone()).catch(() => {}));
  return response;
}

async function shellFile(event) {
  const cache = await caches.open(CONFIG.shellCache);
  const cached = await cache.match(event.request, { ignoreVary: true, ignoreSearch: true });
  return cached || fetch(event.request);
}

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * App code is immutable per URL. It is cached only when its bytes match the hash the
 * server sent with it (a damaged download must not stick); the page checks the task's
 * sha256 again before running it and evicts the entry if that check fails.
 */
async function appCode(event) {
  const cache = await caches.open(CONFIG.appsCache);
  const cached = await cache.match(event.request, { ignoreVary: true });
  if (cached) return cached;
  const response = await fetch(event.request);
  const expected = response.headers.get("X-Content-SHA256");
  if (cacheable(response) && expected) {
    const [toHash, toStore] = [response.clone(), response.clone()];
    event.waitUntil((async () => {
      const bytes = await toHash.arrayBuffer();
      if (hex(await crypto.subtle.digest("SHA-256", bytes)) !== expected.toLowerCase()) return;
      await cache.put(event.request, toStore);
      const keys = await cache.keys();
      for (const old of keys.slice(0, Math.max(0, keys.length - APPS_CACHE_LIMIT))) {
        await cache.delete(old);
      }
    })().catch(() => {}));
  }
  return response;
}

async function runtimeCached() {
  const cache = await caches.open(CONFIG.runtimeCache);
  const found = await Promise.all(CONFIG.runtimeFiles.map((url) => cache.match(url)));
  return found.every(Boolean);
}

/** Fill the runtime cache (from the HTTP cache when the page has loaded it already). */
async function cacheRuntime() {
  const cache = await caches.open(CONFIG.runtimeCache);
  for (const url of CONFIG.runtimeFiles) {
    if (await cache.match(url)) continue;
    const response = await fetch(url);
    if (!cacheable(response)) throw new Error(`${url}: HTTP ${response.status}`);
    await cache.put(url, response);
  }
}
