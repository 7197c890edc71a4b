// Drives the Emotekit keyboard in headless Chromium (playwright-core + Debian's /usr/bin/chromium).
//
//   node tests/browser/keyboard.mjs --url http://127.0.0.1:PORT/ --out result.json \
//        --y4m happy=happy.y4m --y4m sad=sad.y4m [--screenshots DIR] [--bench 30] [--settle 3000]
//
// For each --y4m it starts a browser whose fake camera plays that file, turns the camera on and
// records the suggestion bar. The first run also exercises the keyboard, the emote panel, the
// service worker and the benchmark. Every request the page makes is checked against its origin.
// The result is one JSON file; tests/test_browser.py makes the assertions.
import fs from 'node:fs';
import path from 'node:path';
import {launch as launchChromium} from './chromium.mjs';

function parseArgs(argv) {
  const a = {y4m: [], bench: 30, settle: 3000, chromium: '/usr/bin/chromium'};
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i].replace(/^--/, '');
    const v = argv[++i];
    if (k === 'y4m') {
      const [name, file] = v.split('=');
      a.y4m.push({name, file});
    } else a[k] = ['bench', 'settle'].includes(k) ? Number(v) : v;
  }
  return a;
}

const args = parseArgs(process.argv.slice(2));
const origin = new URL(args.url).origin;
const result = {origin, runs: {}, external: [], console_errors: [], page_errors: [], http_errors: [], failed: []};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function launch(y4m) {
  const browser = await launchChromium({executablePath: args.chromium, camera: y4m || true});
  const context = await browser.newContext({viewport: {width: 390, height: 844}, deviceScaleFactor: 2, hasTouch: true});
  await context.grantPermissions(['camera'], {origin});
  const page = await context.newPage();
  const watch = (req) => {
    const u = req.url();
    if (!(u.startsWith(origin + '/') || u.startsWith('data:') || u.startsWith('blob:'))) result.external.push(u);
  };
  context.on('request', watch);
  page.on('console', (m) => {
    // LiteRT's wasm logs its INFO / WARNING lines through console.error: keep only real errors.
    // "Failed to load resource" lines are HTTP errors, recorded with their URLs in http_errors.
    if (m.type() === 'error' && !/^(INFO|WARNING): |^Failed to load resource/.test(m.text())) result.console_errors.push(m.text());
  });
  context.on('response', (r) => {
    if (r.status() >= 400) result.http_errors.push(`${r.status()} ${new URL(r.url()).pathname}`);
  });
  page.on('pageerror', (e) => result.page_errors.push(String(e)));
  page.on('requestfailed', (r) => result.failed.push(`${r.url()} ${r.failure()?.errorText}`));
  return {browser, context, page};
}

async function ready(page) {
  await page.goto(args.url);
  await page.waitForFunction(() => ['ready', 'error'].includes(document.body.dataset.state), null, {timeout: 90000});
  return page.evaluate(() => ({state: document.body.dataset.state, status: document.getElementById('status').textContent}));
}

async function suggestionsRun(page, out) {
  await page.click('[data-testid=camera-toggle]');
  const camOn = await page.waitForSelector('[data-testid=camera-indicator]:not([hidden])', {timeout: 15000}).then(() => true, () => false);
  out.camera_indicator = camOn;
  out.filled = await page.waitForSelector('[data-testid=suggestions] > [data-emoji]', {timeout: 30000}).then(() => true, () => false);
  await sleep(args.settle);
  Object.assign(out, await page.evaluate(() => ({
    suggestions: [...document.querySelectorAll('[data-testid=suggestions] > [data-emoji]')].map((b) => b.dataset.emoji),
    expression: document.body.dataset.expression || null,
    detector: document.body.dataset.detector || null,
    probs: window.emotekit.probs(),
    labels: window.emotekit.labels(),
    stats: window.emotekit.stats(),
    status: document.getElementById('status').textContent,
  })));
}

async function keyboardChecks(page, out) {
  // Tap a key of the first category, then search by name and tap the match.
  await page.click('[data-testid=text]');
  await page.keyboard.type('hi ');
  await page.click('#tabs [data-tab="Smileys & Emotion"]');
  const first = await page.getAttribute('#grid button[data-emoji]', 'data-emoji');
  await page.click('#grid button[data-emoji]');
  await page.fill('[data-testid=search]', 'pizza');
  const found = await page.$$eval('#grid button[data-emoji]', (bs) => bs.map((b) => b.dataset.emoji));
  await page.click('#grid button[data-emoji="🍕"]');
  await page.fill('[data-testid=search]', '');
  await page.click('#tabs [data-tab=recent]');
  const recent = await page.$$eval('#grid button[data-emoji]', (bs) => bs.map((b) => b.dataset.emoji));
  const text = await page.textContent('[data-testid=text]');
  Object.assign(out, {first_key: first, search_pizza: found, recent, text_after_keys: text});
}

// The VAE morph: thumbnails drawn by the decoder, the slider's ends equal the picked thumbnails
// (t = 0 decodes the character's z, t = 1 the expression's), picking another character changes it.
async function morphChecks(page, out) {
  const at = (t) => page.evaluate(async (v) => {
    document.getElementById('morph-slider').value = String(v);
    await window.emotekit.morph.update();
    return document.getElementById('morph-canvas').toDataURL('image/png');
  }, t);
  const thumbs = (side) => page.$$eval(`#morph-${side} canvas`, (cs) => cs.map((c) => ({
    png: c.toDataURL('image/png'), w: c.width, selected: c.getAttribute('aria-selected') === 'true', name: c.title,
  })));
  const m = (out.morph = {});
  m.first_mode = await page.evaluate(() => window.emotekit.morph.mode());
  await page.evaluate(() => window.emotekit.morph.setMode('fade'));
  const [left, right] = [await thumbs('left'), await thumbs('right')];
  m.left = left.length;
  m.right = right.length;
  m.thumb_width = left[0]?.w ?? 0;
  m.distinct_left = new Set(left.map((c) => c.png)).size;
  m.distinct_right = new Set(right.map((c) => c.png)).size;
  const a0 = await at(0);
  const a1 = await at(1);
  const mid = await at(0.5);
  m.start_is_character = a0 === left.find((c) => c.selected)?.png;
  m.end_is_expression = a1 === right.find((c) => c.selected)?.png;
  m.middle_differs = mid !== a0 && mid !== a1;
  if (left.length > 1) {
    await page.click('#morph-left canvas:nth-child(2)');
    const b0 = await at(0);
    const after = await thumbs('left');
    m.pick_moves_selection = after[1].selected && !after[0].selected;
    m.pick_changes_start = b0 === after[1].png && b0 !== a0;
  }
  // Wear mode: the picked character wearing each expression; its ends are the character and the right thumbnail.
  await page.evaluate(() => window.emotekit.morph.setMode('wear'));
  m.wear_mode = await page.evaluate(() => window.emotekit.morph.mode());
  if (m.wear_mode === 'wear') {
    const [wl, wr] = [await thumbs('left'), await thumbs('right')];
    m.wear_names = wr.map((c) => c.name);
    m.wear_character = wl.findIndex((c) => c.selected);
    const w0 = await at(0);
    const w1 = await at(1);
    m.wear_start_is_character = w0 === wl[m.wear_character]?.png;
    m.wear_end_is_thumb = w1 === wr.find((c) => c.selected)?.png;
    m.wear_distinct = new Set(wr.map((c) => c.png)).size;
    m.wear_full = w1;  // the first expression at full strength, for Python to decode the same latent
  }
  await at(0.5);
  if (args.screenshots) {
    if (m.wear_mode === 'wear') await at(1);
    await page.$eval('#morph', (el) => el.scrollIntoView({block: 'start'}));
    await page.screenshot({path: path.join(args.screenshots, 'morph_panel.png')});
  }
}

// The StyleGAN sliders: face STYLE_ID's pixels and w (the Python side renders the same id and
// compares), then the first slider at +2 through the page's own input event, then Reset.
const STYLE_ID = 3;
async function styleganChecks(page, out) {
  const s = (out.stylegan = {id: STYLE_ID});
  s.body_visible = await page.isVisible('#stylegan [data-role=body]');
  s.sliders = await page.$$eval('#style-sliders input', (xs) => xs.map((x) => ({
    name: x.dataset.name, min: Number(x.min), max: Number(x.max), text: x.closest('label').textContent, title: x.closest('label').title,
  })));
  const grab = () => page.evaluate(async () => {
    const api = window.emotekit.stylegan;
    await api.idle();
    const c = document.getElementById('style-canvas');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const rgb = Array.from(d.filter((_, i) => i % 4 !== 3));
    return {width: c.width, height: c.height, rgb, ...api.current()};
  });
  await page.evaluate((id) => window.emotekit.stylegan.newFace(id), STYLE_ID);
  s.face = await grab();
  s.blank = new Set(s.face.rgb).size <= 1;
  const first = s.sliders[0];
  if (first) {
    await page.fill(`#style-sliders input[data-name="${first.name}"]`, '2');
    s.edit = {[first.name]: 2};
    s.edited = await grab();
    s.slider_changes_pixels = s.edited.rgb.some((v, i) => v !== s.face.rgb[i]);
    await page.click('#style-reset');
    s.reset_restores = (await grab()).rgb.every((v, i) => v === s.face.rgb[i]);
    await page.fill(`#style-sliders input[data-name="${first.name}"]`, '2');
    await page.evaluate(() => window.emotekit.stylegan.idle());
  }
  if (args.screenshots) {
    await page.$eval('#stylegan', (el) => el.scrollIntoView({block: 'start'}));
    await page.screenshot({path: path.join(args.screenshots, 'stylegan_panel.png')});
  }
}

/** "New emote" with the camera on ("My face"): the expression it made (out.new_emote_camera) and a screenshot. */
async function newEmoteShot(page, out, file) {
  await page.click('[data-testid=emote-open]');
  const before = await page.textContent('#emote-id');
  await page.click('[data-testid=emote-new]');
  await page.waitForFunction((id) => document.getElementById('emote-id').textContent !== id, before);
  out.new_emote_camera = await page.getAttribute('[data-testid=dcgan]', 'data-emote-expression');
  await page.screenshot({path: path.join(args.screenshots, file)});
  await page.click('#emote-close');
}

async function emoteChecks(page, out) {
  await page.click('[data-testid=emote-open]');
  const shipped = await page.getAttribute('[data-testid=dcgan]', 'data-shipped');
  out.dcgan_shipped = shipped === 'true';
  out.dcgan_note = await page.textContent('#dcgan [data-role=note]');
  out.morph_shipped = (await page.getAttribute('[data-testid=morph]', 'data-shipped')) === 'true';
  out.stylegan_shipped = (await page.getAttribute('[data-testid=stylegan]', 'data-shipped')) === 'true';
  out.morph_note = await page.textContent('#morph [data-role=note]');
  out.stylegan_note = await page.textContent('#stylegan [data-role=note]');
  if (out.morph_shipped) await morphChecks(page, out);
  if (out.stylegan_shipped) await styleganChecks(page, out);
  if (!out.dcgan_shipped) {
    if (args.screenshots) await page.screenshot({path: path.join(args.screenshots, 'emote_panel.png')});
    await page.click('#emote-close');
    return;
  }
  const grab = () => page.evaluate(() => ({
    id: document.getElementById('emote-id').textContent,
    png: document.getElementById('emote-canvas').toDataURL('image/png'),
  }));
  await page.click('[data-testid=emote-new]');
  await page.waitForFunction(() => document.getElementById('emote-id').textContent !== '–');
  const a = await grab();
  await page.click('[data-testid=emote-new]');
  await page.waitForFunction((id) => document.getElementById('emote-id').textContent !== id, a.id);
  const b = await grab();
  await page.fill('[data-testid=emote-id-input]', a.id);
  await page.click('[data-testid=emote-recreate]');
  await page.waitForFunction((id) => document.getElementById('emote-id').textContent === id, a.id);
  const again = await grab();
  out.emote = {id: a.id, other_id: b.id, differs: a.png !== b.png, recreated_equal: again.png === a.png,
    expression: await page.getAttribute('[data-testid=dcgan]', 'data-emote-expression')};
  // An expression generator: id 7 as each of two expressions, its pixels (compared with Python's in the test).
  out.emote_labels = await page.evaluate(() => window.emotekit.dcgan.labels);
  if (out.emote_labels) {
    out.emote_pixels = {};
    for (const expression of ['happy', 'sad']) {
      out.emote_pixels[expression] = await page.evaluate(async (e) => {
        await window.emotekit.dcgan.generate(7, e);
        const c = document.getElementById('emote-canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        return {width: c.width, height: c.height, rgb: Array.from(d).filter((_, i) => i % 4 !== 3)};
      }, expression);
    }
    await page.evaluate((id) => window.emotekit.dcgan.generate(Number(id)), a.id);
    out.emote.expression = await page.getAttribute('[data-testid=dcgan]', 'data-emote-expression');
  }
  if (args.screenshots) await page.screenshot({path: path.join(args.screenshots, 'emote_panel.png')});
  await page.click('[data-testid=emote-insert]');
  out.sticker = await page.$eval('[data-testid=text]', (el) => {
    const img = el.querySelector('img.sticker');
    return img ? img.alt : null;
  });
}

// "Follow my face" with the camera on: the morph wears what the face shows, the anime mouth slider follows it.
async function followChecks(page, out) {
  const f = (out.follow = {});
  await page.click('[data-testid=emote-open]');
  if (await page.evaluate(() => Boolean(window.emotekit.dcgan && window.emotekit.dcgan.labels))) {
    // "New emote" with the camera on and "My face" picked: an emote of the face's expression.
    await page.click('[data-testid=emote-new]');
    f.emote_expression = await page.getAttribute('[data-testid=dcgan]', 'data-emote-expression');
    f.face_expression = await page.evaluate(() => document.body.dataset.expression || null);
  }
  f.morph_toggle = await page.isVisible('[data-testid=morph-follow]');
  f.style_toggle = await page.isVisible('[data-testid=style-follow]');
  if (f.morph_toggle) {
    await page.check('[data-testid=morph-follow]');
    await sleep(1500);
    Object.assign(f, await page.evaluate(() => ({
      morph: window.emotekit.morph.selected(), mode: window.emotekit.morph.mode(),
      probs: window.emotekit.probs(), labels: window.emotekit.labels(),
    })));
    await page.uncheck('[data-testid=morph-follow]');
  }
  if (f.style_toggle) {
    await page.check('[data-testid=style-follow]');
    await sleep(1000);
    await page.evaluate(() => window.emotekit.stylegan.idle());
    f.mouth = Number(await page.inputValue('#style-sliders input[data-name="mouth_open"]'));
    f.style_probs = await page.evaluate(() => window.emotekit.probs());
    await page.uncheck('[data-testid=style-follow]');
  }
  await page.click('#emote-close');
}

async function main() {
  if (args.screenshots) fs.mkdirSync(args.screenshots, {recursive: true});
  const runs = args.y4m.length ? args.y4m : [{name: 'nocamera', file: null}];
  for (let i = 0; i < runs.length; i++) {
    const {name, file} = runs[i];
    const out = (result.runs[name] = {});
    const {browser, context, page} = await launch(file);
    try {
      const t0 = Date.now();
      Object.assign(out, await ready(page));
      out.tasks = await page.evaluate(() => (window.emotekit.manifest?.models || []).map((m) => m.task));
      out.detector_loaded = await page.evaluate(() => document.body.dataset.detector || null);
      out.load_ms = Date.now() - t0;
      if (i === 0) {
        await keyboardChecks(page, out);
        await emoteChecks(page, out);
      }
      if (file) {
        await suggestionsRun(page, out);
        await followChecks(page, out);
        if (i === 0) {
          if (args.screenshots) await page.screenshot({path: path.join(args.screenshots, 'keyboard_suggestions.png')});
          if (args.screenshots && out.dcgan_shipped) await newEmoteShot(page, out, `new_emote_camera_${name}.png`);
          const top = out.suggestions?.[0];
          if (top) {
            await page.click(`[data-testid=suggestions] > [data-emoji="${top}"]`);
            out.text_after_suggestion = await page.textContent('[data-testid=text]');
          }
          if (args.bench) out.bench = await page.evaluate((n) => window.emotekit.benchmark(n), args.bench);
          await page.click('[data-testid=camera-toggle]');
          out.camera_off_indicator_hidden = await page.$eval('[data-testid=camera-indicator]', (e) => e.hidden);
        }
      }
      if (i === 0) {
        out.service_worker = await page.evaluate(async () => {
          if (!navigator.serviceWorker) return null;
          const reg = await Promise.race([navigator.serviceWorker.ready, new Promise((r) => setTimeout(() => r(null), 5000))]);
          if (!reg) return 'not ready';
          // Wait (up to 15 s) until the worker has also cached the wasm the page used.
          let cached = [];
          for (let t = 0; t < 75; t++) {
            const keys = await caches.keys();
            cached = keys.length ? (await (await caches.open(keys[0])).keys()).map((r) => new URL(r.url).pathname) : [];
            if (cached.some((p) => p.endsWith('.wasm'))) break;
            await new Promise((r) => setTimeout(r, 200));
          }
          return {active: !!reg.active, cached};
        });
        // Offline: the page must come back from the service worker's cache, models included.
        await context.setOffline(true);
        try {
          await page.reload();
          await page.waitForFunction(() => ['ready', 'error'].includes(document.body.dataset.state), null, {timeout: 30000});
          out.offline = await page.evaluate(() => ({
            state: document.body.dataset.state,
            status: document.getElementById('status').textContent,
            detector: document.body.dataset.detector || null,
            tasks: (window.emotekit.manifest?.models || []).map((m) => m.task),
          }));
        } catch (e) {
          out.offline = {state: 'failed', status: String(e).slice(0, 300)};
        }
        await context.setOffline(false);
      }
    } catch (e) {
      out.error = String(e && e.stack || e);
    } finally {
      await browser.close();
    }
  }
  fs.writeFileSync(args.out, JSON.stringify(result, null, 1));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
