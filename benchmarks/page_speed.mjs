// The keyboard page's per-frame cost on a fake camera (headless Chromium, LiteRT.js wasm): turns the camera
// on, waits for a face, then runs window.emotekit.benchmark(N) (the live pipeline, tracking as the live loop
// does, on the camera's frames back to back), then turns the live emoji on, waits out its calibration and runs it
// again on the live pipeline (tracked mesh, expression, geometry, drawing, ranking), and writes its JSON. Driven by
// benchmarks/bench_page_speed.py (--no-live: the first part only).
//
//   node benchmarks/page_speed.mjs --url 'http://127.0.0.1:PORT/?threads=0' --y4m clip.y4m --frames 200 --out result.json [--live 0]
import fs from 'node:fs';
import {launch, parseArgs} from '../tests/browser/chromium.mjs';

const args = parseArgs(process.argv.slice(2), {frames: '200', live: '1'});

const browser = await launch({executablePath: args.chromium, camera: args.y4m});
const out = {page_errors: []};
try {
  const context = await browser.newContext({viewport: {width: 390, height: 844}});
  await context.grantPermissions(['camera'], {origin: new URL(args.url).origin});
  const page = await context.newPage();
  page.on('pageerror', (e) => out.page_errors.push(String(e)));
  await page.goto(args.url);
  await page.waitForFunction(() => ['ready', 'error'].includes(document.body.dataset.state), null, {timeout: 120000});
  await page.click('[data-testid=camera-toggle]');
  out.filled = await page.waitForSelector('[data-testid=suggestions] > [data-emoji]', {timeout: 30000}).then(() => true, () => false);
  out.threads = await page.evaluate(() => window.crossOriginIsolated && new URLSearchParams(location.search).get('threads') !== '0');
  out.live = await page.evaluate(() => window.emotekit.stats());
  // Side by side in one page: the page as it read and cropped before (canvas, JavaScript crop), then as it does now.
  out.plain_bench = await page.evaluate((n) => window.emotekit.benchmark(n, {plain: true}), Number(args.frames));
  out.bench = await page.evaluate((n) => window.emotekit.benchmark(n), Number(args.frames)); // pauses the live loop
  if (args.live !== '0') {
    await page.click('[data-testid=live-toggle]');
    await page.waitForFunction(() => window.emotekit.live().drawn > 0 && !window.emotekit.live().calibrating, null, {timeout: 30000});
    await new Promise((r) => setTimeout(r, 1000));
    out.live_loop = await page.evaluate(() => window.emotekit.stats()); // the live loop's own rate, camera-driven
    out.live_bench = await page.evaluate((n) => window.emotekit.benchmark(n), Number(args.frames));
  }
  out.user_agent = await page.evaluate(() => navigator.userAgent);
} finally {
  await browser.close();
}
fs.writeFileSync(args.out, JSON.stringify(out));
