// Runs PNG frames through the keyboard page's own code in headless Chromium (playwright-core +
// Debian's /usr/bin/chromium): the whole pipeline (BlazeFace -> crop -> expression model), the crop of
// given boxes, or the detector's input tensor. Python makes the frames and compares
// (tests/test_browser.py, benchmarks/bench_page_crop.py).
//
//   node tests/browser/frames.mjs --url http://127.0.0.1:PORT/ --cases cases.json --out result.json
//
// cases.json: {"cases": [{"png": "frame.png", "op": "process" | "crop" | "crop_region" | "track" | "detector_input",
//                         "boxes": [{x, y, width, height}] (crop), "contract": {...} | null (crop)}
//                        | {"op": "crop_video", "pixels": "plane.bin" (I420: the W x H luma plane; RGBX: W x H x 4), "format",
//                           "width", "height", "full_range", "ignore_format", "detect_first", "boxes"}]}
// result.json: {"page": {state, status, detector, labels, contract, default_contract}, "results": [...one per case...],
//               "page_errors": [...], "console_errors": [...], "ms": total}
import fs from 'node:fs';
import {launch, parseArgs} from './chromium.mjs';

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const {cases} = JSON.parse(fs.readFileSync(args.cases, 'utf8'));
  const out = {page: null, results: [], page_errors: [], console_errors: []};
  const browser = await launch({executablePath: args.chromium});
  const t0 = Date.now();
  try {
    const context = await browser.newContext({serviceWorkers: 'block'});
    const page = await context.newPage();
    page.on('pageerror', (e) => out.page_errors.push(String(e)));
    page.on('console', (m) => {
      if (m.type() === 'error' && !/^(INFO|WARNING): |^Failed to load resource/.test(m.text())) out.console_errors.push(m.text());
    });
    await page.goto(args.url);
    await page.waitForFunction(() => ['ready', 'error'].includes(document.body.dataset.state), null, {timeout: 120000});
    out.page = await page.evaluate(() => ({
      state: document.body.dataset.state,
      status: document.getElementById('status').textContent,
      detector: document.body.dataset.detector || null,
      labels: window.emotekit.labels(),
      contract: window.emotekit.frames.contract(),
      crop_engine: window.emotekit.frames.cropEngine(),
      default_contract: window.emotekit.frames.defaultContract(),
    }));
    for (const c of cases) {
      const png64 = c.png ? fs.readFileSync(c.png).toString('base64') : null;
      let r;
      if (c.op === 'crop_video') {
        r = await page.evaluate(([b, w, h, boxes, opts]) => window.emotekit.frames.cropVideo(b, w, h, boxes, opts),
          [fs.readFileSync(c.pixels).toString('base64'), c.width, c.height, c.boxes,
            {format: c.format, fullRange: !!c.full_range, ignoreFormat: !!c.ignore_format, detectFirst: !!c.detect_first}]);
      } else if (c.op === 'process') r = await page.evaluate((b) => window.emotekit.frames.process(b), png64);
      else if (c.op === 'crop') {
        r = await page.evaluate(([b, boxes, contract]) => window.emotekit.frames.crop(b, boxes, contract),
          [png64, c.boxes, c.contract || null]);
      } else if (c.op === 'crop_region') {
        r = await page.evaluate(([b, boxes, contract]) => window.emotekit.frames.crop(b, boxes, contract, true),
          [png64, c.boxes, c.contract || null]);
      } else if (c.op === 'track') r = await page.evaluate(([b, n]) => window.emotekit.frames.track(b, n), [png64, c.n || 3]);
      else if (c.op === 'detector_input') r = await page.evaluate((b) => window.emotekit.frames.detectorInput(b), png64);
      else throw new Error(`unknown op ${c.op}`);
      out.results.push(r);
    }
  } finally {
    out.ms = Date.now() - t0;
    await browser.close();
  }
  fs.writeFileSync(args.out, JSON.stringify(out));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
