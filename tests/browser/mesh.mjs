// Runs the page's face-mesh modules (face_mesh.js, face_geometry.js, cues.js, live_emoji.js) in headless
// Chromium (playwright-core + Debian's /usr/bin/chromium) on inputs that Python made, so that
// tests/test_browser_mesh.py can compare them with mobile_demo/face_mesh.py, core/face_geometry.py and
// mobile_demo/live_cues.py. The modules are imported into the keyboard page served by mobile_demo.server.
//
//   node tests/browser/mesh.mjs --url http://127.0.0.1:PORT/ --cases cases.json --out result.json
//
// cases.json: {"cases": [{"op": "geometry", "landmarks": [1404 numbers], "neutral": {...} | null}
//                        | {"op": "crop", "rgba": base64, "width", "height", "roi": {cx, cy, side, c, s}}
//                        | {"op": "roi", "landmarks": [...], "face": {x, y, width, height, keypoints}, "raw": [1404]}
//                        | {"op": "filter", "values": [...], "times": [...], "params": [min_cutoff, beta, d_cutoff]}
//                        | {"op": "calibration", "landmarks": [[1404], ...], "times": [...]}
//                        | {"op": "cues", "probs": [7] | null, "coeffs": {...} | null, "k": n}
//                        | {"op": "draw", "coeffs": {...}, "size": n}
//                        | {"op": "model", "rgba": base64, "width", "height", "roi": {...}}]}
// result.json: {"results": [...one per case...], "page_errors": [...], "console_errors": [...], "constants": {...}}
import fs from 'node:fs';
import {launch, parseArgs} from './chromium.mjs';

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const {cases} = JSON.parse(fs.readFileSync(args.cases, 'utf8'));
  const out = {results: [], page_errors: [], console_errors: []};
  const browser = await launch({executablePath: args.chromium});
  try {
    const context = await browser.newContext({serviceWorkers: 'block'});
    const page = await context.newPage();
    page.on('pageerror', (e) => out.page_errors.push(String(e)));
    page.on('console', (m) => {
      if (m.type() === 'error' && !/^(INFO|WARNING): |^Failed to load resource/.test(m.text())) out.console_errors.push(m.text());
    });
    await page.goto(args.url);
    await page.waitForFunction(() => ['ready', 'error'].includes(document.body.dataset.state), null, {timeout: 120000});
    out.constants = await page.evaluate(async () => {
      const g = await import('/js/face_geometry.js');
      const c = await import('/js/cues.js');
      const m = await import('/js/face_mesh.js');
      return {DEFAULT_NEUTRAL: g.DEFAULT_NEUTRAL, SLACK: g.SLACK, MEASURES: g.MEASURES, COEFFICIENTS: g.COEFFICIENTS, CUES: c.CUES,
        FILTER_COEFFICIENTS: g.FILTER_COEFFICIENTS, FILTER_ANGLES: g.FILTER_ANGLES,
        spans: [g.EYE_CLOSED, g.EYE_OPEN, g.JAW_SPAN, g.WIDTH_SPAN, g.PUCKER_SPAN, g.JAW_IN_CORNERS, g.SMILE_SPAN, g.BROW_SPAN,
          g.BROW_DOWN_SPAN],
        mesh: [m.INPUT_SIZE, m.NUM_LANDMARKS, m.ROI_SCALE, m.MIN_SCORE, m.BOX_SIDE_IOD, m.BOX_DOWN_IOD]};
    });
    for (const c of cases) {
      out.results.push(await page.evaluate(runCase, c));
    }
  } finally {
    await browser.close();
  }
  fs.writeFileSync(args.out, JSON.stringify(out));
}

// Runs in the page.
async function runCase(c) {
  const g = await import('/js/face_geometry.js');
  const fm = await import('/js/face_mesh.js');
  const decode = (b64) => Uint8ClampedArray.from(atob(b64), (ch) => ch.charCodeAt(0));
  if (c.op === 'geometry') {
    const m = g.measure(c.landmarks);
    return {measures: m, coefficients: g.coefficients(m, c.neutral)};
  }
  if (c.op === 'crop') {
    const rgba = decode(c.rgba);
    const input = fm.cropInput(rgba, c.width, c.height, c.roi);
    const ms = [];
    for (let i = 0; i < 9; i++) { // warm: the median of 9 more
      const t0 = performance.now();
      fm.cropInput(rgba, c.width, c.height, c.roi, fm.INPUT_SIZE, new Float32Array(input.length));
      ms.push(performance.now() - t0);
    }
    ms.sort((x, y) => x - y);
    return {input: Array.from(input), ms: ms[4]};
  }
  if (c.op === 'roi') {
    return {fromMesh: fm.roiFromMesh(c.landmarks), fromFace: fm.roiFromFace(c.face),
      toFrame: Array.from(fm.landmarksToFrame(c.raw, c.face_roi)), faceFromMesh: fm.faceFromMesh(c.landmarks, 0.7)};
  }
  if (c.op === 'filter') {
    const f = new g.OneEuroFilter(...c.params);
    return c.values.map((x, i) => f.filter(x, c.times[i]));
  }
  if (c.op === 'calibration') {
    const cal = new g.Calibration();
    const ready = c.landmarks.map((lm, i) => cal.add(g.measure(lm), c.times[i]));
    return {ready, neutral: cal.neutral()};
  }
  if (c.op === 'cues') {
    const {parseEmojiTable} = await import('/js/suggest.js');
    const {cueStrengths, rankLive} = await import('/js/cues.js');
    const doc = await (await fetch('/emoji_map.json')).json();
    const table = parseEmojiTable(doc, doc.labels);
    return {strengths: c.coeffs ? cueStrengths(c.coeffs) : null,
      top: rankLive(table, c.probs, c.coeffs, c.k).map((e) => [e.emoji, e.score])};
  }
  if (c.op === 'draw') {
    const {drawLiveEmoji} = await import('/js/live_emoji.js');
    const canvas = new OffscreenCanvas(c.size, c.size);
    const ctx = canvas.getContext('2d');
    const t0 = performance.now();
    drawLiveEmoji(ctx, c.coeffs, c.size);
    const ms = performance.now() - t0;
    const px = ctx.getImageData(0, 0, c.size, c.size).data;
    let b64 = '';
    for (let i = 0; i < px.length; i += 8192) b64 += String.fromCharCode(...px.subarray(i, i + 8192));
    return {rgba: btoa(b64), ms};
  }
  if (c.op === 'model') {
    const {Runner} = await import('/js/runtime.js');
    const runner = await Runner.load(fm.MESH_URL);
    const input = fm.cropInput(decode(c.rgba), c.width, c.height, c.roi);
    await runner.run(input);
    const ms = [];
    let outs;
    for (let i = 0; i < 10; i++) {
      const t0 = performance.now();
      outs = await runner.run(input);
      ms.push(performance.now() - t0);
    }
    const mesh = outs.find((o) => o.data.length === fm.NUM_LANDMARKS * 3);
    const score = outs.find((o) => o.data.length === 1);
    ms.sort((a, b) => a - b);
    return {landmarks: Array.from(fm.landmarksToFrame(mesh.data, c.roi)), logit: score.data[0], ms: ms[5]};
  }
  throw new Error(`unknown op ${c.op}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
