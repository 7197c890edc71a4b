// Drives the keyboard page's live emoji in headless Chromium (playwright-core + Debian's /usr/bin/chromium) with
// a fake camera playing a y4m clip that Python made (tests/test_browser_live.py): turns live on, waits out the
// calibration, samples the live emoji's coefficients and canvas for a few seconds, records a sticker, fetches
// its APNG (downloaded as a user would), inserts it as a sticker, and writes one JSON report that the Python test checks.
//
//   node tests/browser/live.mjs --url http://127.0.0.1:PORT/ --y4m clip.y4m --out result.json
//        [--seconds 4] [--screenshot shot.png] [--bench 0]
import fs from 'node:fs';
import {launch, parseArgs} from './chromium.mjs';

const args = parseArgs(process.argv.slice(2), {seconds: '4', bench: '0'});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const out = {page_errors: [], console_errors: [], external: [], samples: []};
const origin = new URL(args.url).origin;
const browser = await launch({executablePath: args.chromium, camera: args.y4m});
try {
  const context = await browser.newContext({viewport: {width: 390, height: 844}, deviceScaleFactor: 2, hasTouch: true,
    acceptDownloads: true});
  await context.grantPermissions(['camera'], {origin});
  context.on('request', (req) => {
    const u = req.url();
    if (!(u.startsWith(origin + '/') || u.startsWith('data:') || u.startsWith('blob:'))) out.external.push(u);
  });
  const page = await context.newPage();
  page.on('pageerror', (e) => out.page_errors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/^(INFO|WARNING): |^Failed to load resource/.test(m.text())) out.console_errors.push(m.text());
  });
  await page.goto(args.url);
  await page.waitForFunction(() => ['ready', 'error'].includes(document.body.dataset.state), null, {timeout: 120000});
  out.state = await page.evaluate(() => document.body.dataset.state);
  // One tap: live on turns the camera on too.
  await page.click('[data-testid=live-toggle]');
  const t0 = Date.now();
  out.drawing = await page.waitForFunction(() => window.emotekit.live().drawn > 0, null, {timeout: 30000}).then(() => true, () => false);
  out.first_draw_ms = Date.now() - t0;
  out.calibrated = await page.waitForFunction(() => !window.emotekit.live().calibrating, null, {timeout: 20000})
    .then(() => true, () => false);
  out.calibration_ms = Date.now() - t0;
  out.camera_on = await page.evaluate(() => document.body.dataset.camera === 'on');
  out.stored_neutral = await page.evaluate(() => localStorage.getItem('emotekit.live.neutral') !== null);
  const end = Date.now() + Number(args.seconds) * 1000;
  while (Date.now() < end) {
    out.samples.push(await page.evaluate(() => {
      const c = document.querySelector('[data-testid=live-emoji]');
      const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let opaque = 0;
      let transparent = 0;
      let hash = 0;
      for (let i = 0; i < px.length; i += 4) {
        if (px[i + 3] > 200) opaque++;
        else if (px[i + 3] === 0) transparent++;
        hash = (hash * 31 + px[i] + 7 * px[i + 3]) >>> 0;
      }
      const l = window.emotekit.live();
      return {t: performance.now(), roll: l.coeffs && l.coeffs.roll, raw_roll: l.measures && l.measures.roll, face: l.face,
        drawn: l.drawn, opaque, transparent, size: c.width * c.height, hash,
        suggestions: [...document.querySelectorAll('[data-testid=suggestions] > [data-emoji]')].map((b) => b.dataset.emoji)};
    }));
    await sleep(100);
  }
  out.stats = await page.evaluate(() => window.emotekit.stats());
  out.live = await page.evaluate(() => window.emotekit.live());
  out.status = await page.textContent('[data-testid=status]');
  // A sticker: 2 s recorded, then the APNG behind the download link.
  await page.click('[data-testid=live-record]');
  out.sticker_shown = await page.waitForSelector('[data-testid=live-sticker]:not([hidden])', {timeout: 20000})
    .then(() => true, () => false);
  if (out.sticker_shown) {
    // The user's way: the <a download> (the page's CSP keeps fetch() to its own origin, blob: URLs included).
    const a = await page.evaluate(() => {
      const el = document.querySelector('[data-testid=live-sticker]');
      return {href: el.href, download: el.getAttribute('download'), frames: Number(el.dataset.frames)};
    });
    const [download] = await Promise.all([page.waitForEvent('download', {timeout: 10000}), page.click('[data-testid=live-sticker]')]);
    out.sticker = {...a, suggested: download.suggestedFilename(), png64: fs.readFileSync(await download.path()).toString('base64')};
    await page.click('[data-testid=live-insert]');
    out.inserted = await page.waitForSelector('[data-testid=text] img.sticker', {timeout: 5000})
      .then((img) => img.evaluate((el) => ({alt: el.alt, src: el.src.slice(0, 22)})), () => null);
  }
  if (args.screenshot) {
    await page.evaluate(() => document.activeElement && document.activeElement.blur());
    await sleep(300);
    await page.screenshot({path: args.screenshot});
  }
  if (Number(args.bench)) out.bench = await page.evaluate((n) => window.emotekit.benchmark(n), Number(args.bench));
  await page.click('[data-testid=live-toggle]');
  out.off = await page.evaluate(() => ({live: document.body.dataset.live, hidden: document.getElementById('live').hidden,
    camera: document.body.dataset.camera}));
} catch (e) {
  out.error = String(e && e.stack || e);
} finally {
  await browser.close();
}
fs.writeFileSync(args.out, JSON.stringify(out));
