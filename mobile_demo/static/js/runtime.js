// LiteRT.js runtime and the model manifest: every model the page runs is found through
// /models/manifest.json (by its "task") and compiled for the CPU (XNNPack in wasm).
import {loadLiteRt, loadAndCompile, Tensor} from '@litertjs/core';

const WASM_DIR = '/vendor/litertjs/core/wasm/';
let runtimePromise = null;

/** Multi-threaded XNNPack needs a cross-origin-isolated page (the server sends COOP/COEP). `?threads=0|1` overrides. */
export function useThreads() {
  const q = new URLSearchParams(location.search).get('threads');
  if (q !== null) return q === '1' && self.crossOriginIsolated;
  return self.crossOriginIsolated && (navigator.hardwareConcurrency || 1) >= 4;
}

function cpuThreads() {
  return useThreads() ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
}

/** Loads the LiteRT.js wasm once (served from this origin). */
export function loadRuntime() {
  if (!runtimePromise) {
    runtimePromise = loadLiteRt(WASM_DIR, {threads: useThreads()}).catch((e) => {
      runtimePromise = null;
      throw e;
    });
  }
  return runtimePromise;
}

/** The manifest's entries ({} when there is no manifest yet). Paths are made absolute URLs. */
export async function loadManifest(url = '/models/manifest.json') {
  let response;
  try {
    response = await fetch(url, {cache: 'no-cache'});
  } catch (e) {
    return {models: [], error: `manifest unreachable (${e.message})`};
  }
  if (!response.ok) return {models: [], error: 'no model manifest yet'};
  const manifest = await response.json();
  manifest.models = manifest.models || [];
  const base = new URL(url, location.href);
  const resolvePath = (p) => (p ? new URL(p, base).pathname : p);
  for (const m of manifest.models) {
    m.url = resolvePath(m.path);
    // The side file a VAE decoder's entry names (export/cli.py: "latents"), made absolute the same way.
    if (typeof m.latents === 'string') m.latents_url = resolvePath(m.latents);
  }
  return manifest;
}

/** A JSON file (the emoji tables, a side file the manifest names); rejects with the HTTP status when it isn't there. */
export async function fetchJson(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.json();
}

/** The first manifest entry for a task, or undefined. */
export function findModel(manifest, task) {
  return manifest.models.find((m) => m.task === task);
}

/** A compiled model with a small helper to run float32 inputs and read float32 outputs. */
export class Runner {
  constructor(model) {
    this.model = model;
    // Copies: the details' shapes are views into wasm memory, which may move when it grows.
    // A dynamic (-1) batch is fixed to 1 (on-device models are exported with batch 1).
    this.inputShapes = model.getInputDetails().map((d) => Array.from(d.shape, (v) => (v < 0 ? 1 : v)));
    this.outputNames = model.getOutputDetails().map((d) => d.name);
  }

  /** Fetches and compiles a .tflite file; rejects with the HTTP status when it isn't there. */
  static async load(url) {
    await loadRuntime();
    const response = await fetch(url);
    if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    const model = await loadAndCompile(bytes, {accelerator: 'wasm', cpuOptions: {numThreads: cpuThreads()}});
    return new Runner(model);
  }

  inputShape(i = 0) {
    return this.inputShapes[i];
  }

  /** Runs with Float32Array inputs (one per model input); returns [{data, shape, name}] in output order. */
  async run(...arrays) {
    const tensors = arrays.map((a, i) => new Tensor(a, this.inputShape(i)));
    let outs;
    try {
      outs = await this.model.run(tensors);
    } finally {
      for (const t of tensors) t.delete();
    }
    const result = outs.map((t, i) => {
      const data = Float32Array.from(t.toTypedArray());
      const shape = Array.from(t.type.layout.dimensions);
      return {data, shape, name: this.outputNames[i] ?? String(i)};
    });
    for (const t of outs) t.delete();
    return result;
  }
}
