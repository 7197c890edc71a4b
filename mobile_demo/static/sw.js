// Emotekit's service worker: the page works offline once it has been opened online.
// Network first (so a new model or page shows up at once), falling back to the cached copy;
// the shell, the emoji tables, LiteRT.js and the models in the manifest are cached at install.
// A new CACHE name when the page's files change: activating the worker drops the old copies.
const CACHE = 'emotekit-v8';
// Every script in js/ is listed here (tests/test_browser.py checks): the page must load offline.
const SHELL = [
  '/', '/index.html', '/css/app.css', '/manifest.webmanifest', '/icons/icon-192.png', '/icons/icon-512.png',
  '/js/app.js', '/js/runtime.js', '/js/blazeface.js', '/js/crop.js', '/js/suggest.js', '/js/keyboard.js',
  '/js/emote_panel.js', '/js/emote_dcgan.js', '/js/emote_morph.js', '/js/emote_stylegan.js', '/js/emote_noise.js', '/js/follow.js',
  '/js/face_mesh.js', '/js/face_geometry.js', '/js/cues.js', '/js/live_emoji.js', '/js/live.js', '/js/apng.js',
  '/wasm/crop.wasm',
  '/emoji_keyboard.json', '/emoji_map.json', '/models/manifest.json', '/models/emote-ids.json',
  '/vendor/litertjs/core/dist/index.js', '/vendor/litertjs/wasm-utils/dist/index.js',
  '/vendor/face_detection_short_range.tflite', '/vendor/face_landmark.tflite',
];

async function precache() {
  const cache = await caches.open(CACHE);
  const urls = [...SHELL];
  try {
    const manifest = await (await fetch('/models/manifest.json')).json();
    for (const m of manifest.models || []) {
      if (m.path) urls.push(new URL(m.path, new URL('/models/', self.location.origin)).pathname);
    }
  } catch {
    // no manifest yet: the models get cached when the page first loads them
  }
  // One missing file (a model not shipped yet) must not stop the others being cached.
  await Promise.all(urls.map((u) => cache.add(u).catch(() => {})));
}

self.addEventListener('install', (event) => {
  event.waitUntil(precache().then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) if (key !== CACHE) await caches.delete(key);
    await self.clients.claim();
  })());
});

// The page lists what it loaded before this worker took control (the wasm variant, the models).
self.addEventListener('message', (event) => {
  const urls = event.data && Array.isArray(event.data.cache) ? event.data.cache : [];
  const own = urls.filter((u) => typeof u === 'string' && u.startsWith('/') && !u.startsWith('//'));
  event.waitUntil(caches.open(CACHE).then(async (cache) => {
    for (const u of own) if (!(await cache.match(u))) await cache.add(u).catch(() => {});
  }));
});

self.addEventListener('fetch', (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (req.method !== 'GET' || url.origin !== self.location.origin) return;
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    try {
      const response = await fetch(req);
      // The LiteRT wasm is fetched by whichever variant this browser supports: cache what it uses.
      if (response.ok) cache.put(req, response.clone());
      return response;
    } catch (e) {
      const hit = await cache.match(req, {ignoreSearch: true});
      if (hit) return hit;
      if (req.mode === 'navigate') {
        const page = await cache.match('/index.html');
        if (page) return page;
      }
      throw e;
    }
  })());
});
