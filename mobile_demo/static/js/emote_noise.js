// Claimable emote ids: the DCGAN generator noise of an id, identical bit for bit to
// keras_models/common/noise.py (noise_for_id). See that file's docstring for the algorithm:
// fmix32(id) seeds mulberry32; uniforms (x + 0.5) / 2^32; Box-Muller in float64; float32.

const TWO_32 = 4294967296;

/** MurmurHash3's 32-bit finalizer (a bijection on uint32). */
export function fmix32(h) {
  h >>>= 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

/** A mulberry32 generator of uint32 values seeded with `state`. */
export function mulberry32(state) {
  let a = state >>> 0;
  return function next() {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1) >>> 0;
    t = (t ^ ((t + Math.imul(t ^ (t >>> 7), t | 61)) >>> 0)) >>> 0;
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** The Float32Array(nz) noise of an emote id (an integer in 0..2^32-1). */
export function noiseForId(id, nz) {
  if (!Number.isInteger(id) || id < 0 || id > 0xffffffff) {
    throw new RangeError(`an emote id must be an integer in 0..4294967295. Received: id=${id}`);
  }
  if (!Number.isInteger(nz) || nz < 1) {
    throw new RangeError(`nz must be a positive integer. Received: nz=${nz}`);
  }
  const next = mulberry32(fmix32(id));
  const out = new Float32Array(nz);
  for (let i = 0; i < nz; i += 2) {
    const u1 = (next() + 0.5) / TWO_32;
    const u2 = (next() + 0.5) / TWO_32;
    const r = Math.sqrt(-2.0 * Math.log(u1));
    out[i] = r * Math.cos(2.0 * Math.PI * u2);
    if (i + 1 < nz) out[i + 1] = r * Math.sin(2.0 * Math.PI * u2);
  }
  return out;
}

/** A random claimable id (uniform over uint32). */
export function randomId() {
  const a = new Uint32Array(1);
  crypto.getRandomValues(a);
  return a[0];
}
