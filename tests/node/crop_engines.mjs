// The page's crop in its two engines, in Node: the WebAssembly module (mobile_demo/wasm/crop.c) and the
// JavaScript it falls back on, on random frames, boxes, turns and contracts; and the module's crops of given
// boxes for Python to compare with core.crop (tests/test_crop_wasm.py).
//
//   node tests/node/crop_engines.mjs --trials N --frame frame.bin --width W --height H --boxes boxes.json --out out.json
import fs from 'node:fs';
import path from 'node:path';
import * as C from '../../mobile_demo/static/js/crop.js';
import * as B from '../../mobile_demo/static/js/blazeface.js';

const args = {};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) args[argv[i].replace(/^--/, '')] = argv[i + 1];
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const bytes = fs.readFileSync(path.join(root, 'mobile_demo/static/wasm/crop.wasm'));
const out = {bad_module_refused: !C.useCropWasm(new Uint8Array([0, 97, 115, 109, 9, 9])) && C.cropEngine() === 'js'};

const W = Number(args.width);
const H = Number(args.height);
const rgba = new Uint8Array(fs.readFileSync(args.frame)); // W x H RGBA
let seed = 7;
const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);

// Random cases: both engines on the same input, the number of crops that differ in any pixel.
const trials = Number(args.trials || 300);
let differ = 0;
const kinds = {};
const cases = [];
for (let n = 0; n < trials; n++) {
  const side = 4 + rand() * 1.3 * Math.max(W, H);
  const x = -0.3 * side + rand() * W;
  const y = -0.3 * side + rand() * H;
  const a = (rand() - 0.5) * 7;
  const eyes = [[x + side * 0.3, y + side * 0.4], [x + side * 0.3 + Math.cos(a) * side * 0.4, y + side * 0.4 + Math.sin(a) * side * 0.4]];
  const c = C.contractFrom({roll: rand() < 0.7 ? 'eyes' : 'keep', border: rand() < 0.5 ? 'replicate' : 'constant',
    fill: Math.floor(rand() * 256), size: [48, 48, 17, 600][Math.floor(rand() * 4)], scale: 0.8 + rand()});
  const plan = C.cropPlan(c, x, y, side, side * (0.7 + rand() * 0.6), rand() < 0.9 ? eyes : null);
  const luma = rand() < 0.4 ? C.lumaTable(rand() < 0.5) : null;
  let src = luma ? rgba.filter((_, i) => i % 4 === 1) : rgba;
  let origin = null;
  if (rand() < 0.5) {
    origin = C.cropRect(c, plan, W, H);
    if (!origin.w || !origin.h) continue;
    const px = luma ? 1 : 4;
    const sub = new Uint8Array(origin.w * origin.h * px);
    for (let r = 0; r < origin.h; r++) {
      const at = ((origin.y + r) * W + origin.x) * px;
      sub.set(src.subarray(at, at + origin.w * px), r * origin.w * px);
    }
    src = sub;
  }
  cases.push({src, plan, c, origin, luma, inPlace: origin && rand() < 0.5});
}
// The JavaScript crop of every case, then the module's, loaded once: the taps it keeps from one case to the next
// (a tracked face's) must never be another geometry's.
C.dropCropWasm();
const js = cases.map((k) => C.cropSquare(k.src, W, H, k.plan, k.c, null, k.origin, k.luma));
C.useCropWasm(bytes);
cases.forEach((k, n) => {
  let view = k.src;
  if (k.inPlace) { // the pixels already in the module's memory, as a grab writes them
    view = C.cropInput(k.src.length);
    view.set(k.src);
  }
  const wasm = C.cropSquare(view, W, H, k.plan, k.c, null, k.origin, k.luma);
  const key = `${k.luma ? 'luma' : 'rgba'} ${k.c.roll} ${k.c.border}${k.c.size > 512 ? ' (js: size > 512)' : ''}`;
  kinds[key] = (kinds[key] || 0) + 1;
  if (js[n].length !== wasm.length || js[n].some((v, i) => v !== wasm[i])) differ++;
});
out.trials = cases.length;
out.differ = differ;
out.kinds = kinds;

// The module's crops of given boxes (for core.crop), under the default contract and a constant-border one.
C.useCropWasm(bytes);
out.engine = C.cropEngine();
const boxes = JSON.parse(fs.readFileSync(args.boxes, 'utf8'));
out.crops = [C.contractFrom(null), C.contractFrom({border: 'constant', fill: 77, roll: 'keep', scale: 1.3})].map((c) =>
  boxes.map((b) => Array.from(C.cropBox(rgba, W, H, b, c))));
// BlazeFace's letterbox of whole-multiple frames (640x480, 1280x720): the module's block means and blockInput's.
out.letterbox = [[640, 480], [1280, 720]].map(([w, h]) => {
  const frame = new Uint8Array(w * h * 4).map(() => Math.floor(rand() * 256));
  const lb = B.letterbox(w, h);
  const js = B.blockInput(frame, w, lb, w / lb.w, new Float32Array(128 * 128 * 3));
  const mod = new Float32Array(128 * 128 * 3);
  const ran = C.letterboxBlocks(frame, w, lb, w / lb.w, mod);
  return {size: [w, h], ran, same: js.every((v, i) => v === mod[i]), filled: mod.some((v) => v !== 0)};
});
// A tracked face as the pipeline meets it: the same box frame after frame, a detection frame (letterbox, then
// the crop of the whole frame) every third, the crop's rectangle read into the module's memory in between. The
// taps the module keeps from frame to frame must not outlive what the letterbox or a grab wrote over them.
{
  const w = 640;
  const h = 480;
  const frame = new Uint8Array(w * h * 4).map(() => Math.floor(rand() * 256));
  const c = C.contractFrom(null);
  const plan = C.cropPlan(c, 200.5, 120.25, 210, 220, [[260, 200], [350, 190]]);
  const rect = C.cropRect(c, plan, w, h);
  const sub = new Uint8Array(rect.w * rect.h * 4);
  for (let r = 0; r < rect.h; r++) {
    const at = ((rect.y + r) * w + rect.x) * 4;
    sub.set(frame.subarray(at, at + rect.w * 4), r * rect.w * 4);
  }
  C.dropCropWasm();
  const want = C.cropSquare(frame, w, h, plan, c);
  C.useCropWasm(bytes);
  const lb = B.letterbox(w, h);
  out.sequence = [];
  for (let i = 0; i < 7; i++) {
    let got;
    if (i % 3 === 0) { // the frame read into the module's memory (a VideoFrame), or not (a canvas's pixels)
      const view = i === 3 ? frame : C.cropInput(frame.length);
      if (view !== frame) view.set(frame);
      C.letterboxBlocks(view, w, lb, w / lb.w, new Float32Array(128 * 128 * 3));
      got = C.cropSquare(view, w, h, plan, c, null, {x: 0, y: 0, w, h});
    } else {
      const view = C.cropInput(sub.length);
      view.set(sub);
      got = C.cropSquare(view, w, h, plan, c, null, rect);
    }
    out.sequence.push(got.every((v, k) => v === want[k]));
  }
}
// A detection frame whose tile the detector letterboxes too (1280x960: a 640x640 tile, 5 times the letterbox)
// between the frame's read into the module's memory and its crop: the crop is still the frame's.
{
  const w = 1280;
  const h = 960;
  const frame = new Uint8Array(w * h * 4).map(() => Math.floor(rand() * 256));
  const c = C.contractFrom(null);
  const plan = C.cropPlan(c, 500.5, 300.25, 300, 310, [[560, 400], [700, 390]]);
  C.dropCropWasm();
  const want = C.cropSquare(frame, w, h, plan, c);
  C.useCropWasm(bytes);
  const view = C.cropInput(frame.length);
  view.set(frame);
  const tile = new Uint8Array(640 * 640 * 4);
  for (let r = 0; r < 640; r++) tile.set(frame.subarray((r + 320) * w * 4 + 320 * 4, (r + 320) * w * 4 + 960 * 4), r * 640 * 4);
  const lb = B.letterbox(640, 640);
  const ran = C.letterboxBlocks(tile, 640, lb, 640 / lb.w, new Float32Array(128 * 128 * 3));
  const got = C.cropSquare(view, w, h, plan, c, null, {x: 0, y: 0, w, h});
  out.tile_between = {ran, same: got.every((v, k) => v === want[k])};
}
out.luma_limited = Array.from(C.lumaTable(false));
out.luma_full = Array.from(C.lumaTable(true));
fs.writeFileSync(args.out, JSON.stringify(out));
