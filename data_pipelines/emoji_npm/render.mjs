// Renders SVG emoji to PNG for data_pipelines.emoji_sets (run by `python -m data_pipelines emoji-sets --install`).
//   node render.mjs JOBS.json SIZE
// JOBS.json: [[svg path, png path, margin], ...]. Each PNG is SIZE pixels wide (transparent background),
// written under a temporary name and renamed, so an interrupted run leaves no half-written file.
// A margin > 0 first crops the drawing to the square around its bounding box plus that margin (SVG
// units): OpenMoji draws on a 72-unit grid with a wide empty border, the other sets nearly fill theirs.
// Exit status 1 and one line naming the file when an SVG cannot be read or rendered.
import fs from 'node:fs';
import os from 'node:os';
import { Resvg, renderAsync } from '@resvg/resvg-js';

const [jobsPath, sizeArg] = process.argv.slice(2);
const size = Number(sizeArg);
if (!jobsPath || !(size > 0)) {
  console.error('usage: node render.mjs JOBS.json SIZE');
  process.exit(2);
}
const jobs = JSON.parse(fs.readFileSync(jobsPath, 'utf8'));
const options = { fitTo: { mode: 'width', value: size }, font: { loadSystemFonts: false }, logLevel: 'off' };

function cropped(data, margin) {
  const r = new Resvg(data, options);
  const b = r.getBBox();
  if (b && b.width > 0 && b.height > 0) {
    const side = Math.max(b.width, b.height) + 2 * margin;
    const cx = b.x + b.width / 2, cy = b.y + b.height / 2;
    b.x = cx - side / 2; b.y = cy - side / 2; b.width = side; b.height = side;
    r.cropByBBox(b);
  }
  return r.render();
}

async function one([svg, png, margin]) {
  try {
    const data = fs.readFileSync(svg);
    const image = margin > 0 ? cropped(data, margin) : await renderAsync(data, options);
    const tmp = `${png}.tmp-${process.pid}`;
    fs.writeFileSync(tmp, image.asPng());
    fs.renameSync(tmp, png);
  } catch (e) {
    throw new Error(`cannot render ${svg}: ${String(e.message || e).split('\n')[0]}`);
  }
}

let next = 0;
async function worker() {
  while (next < jobs.length) await one(jobs[next++]);
}
try {
  await Promise.all(Array.from({ length: Math.max(1, os.cpus().length) }, worker));
} catch (e) {
  console.error(e.message);
  process.exit(1);
}
