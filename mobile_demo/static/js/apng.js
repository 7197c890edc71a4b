// A small animated-PNG (APNG) encoder, in the page: RGBA frames -> one image/png Blob that browsers play
// (and that shows its first frame where APNG is not understood). PNG chunks with their CRC-32, IHDR (8-bit
// RGBA), acTL (frames, plays), one fcTL per frame, the first frame's data as IDAT and the others' as fdAT
// (with their sequence numbers), zlib streams from CompressionStream('deflate'). Nothing leaves the page.
//
//   const blob = await encodeApng([{rgba, delayMs}, ...], width, height);

const SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];

let crcTable = null;

/** CRC-32 (ISO 3309, PNG's) of `bytes` (continuing from `crc`, the CRC of what came before, if given). */
export function crc32(bytes, crc = 0) {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = (crc ^ 0xffffffff) >>> 0;
  for (let i = 0; i < bytes.length; i++) c = crcTable[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** One PNG chunk: length, type, data, CRC-32 of type and data. */
export function chunk(type, data) {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

function u32s(...values) {
  const out = new Uint8Array(4 * values.length);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => view.setUint32(4 * i, v));
  return out;
}

/** zlib (RFC 1950) bytes of `bytes`, by the browser's CompressionStream. */
export async function zlib(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream('deflate'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/**
 * The PNG scanlines of an RGBA image: each row led by its filter byte, filter 1 (Sub: each byte minus the one
 * a pixel to its left), which shrinks flat drawings such as the emoji several times under deflate.
 */
export function scanlines(rgba, width, height) {
  const row = width * 4;
  const out = new Uint8Array(height * (row + 1));
  for (let y = 0; y < height; y++) {
    const o = y * (row + 1);
    const s = y * row;
    out[o] = 1;
    for (let i = 0; i < row; i++) out[o + 1 + i] = (rgba[s + i] - (i >= 4 ? rgba[s + i - 4] : 0)) & 0xff;
  }
  return out;
}

/**
 * An APNG of `frames` ([{rgba: width*height*4 un-premultiplied RGBA bytes, delayMs}]) played `plays` times
 * (0: for ever): every frame whole (no offsets), replacing the previous one (dispose none, blend source), so
 * that transparent pixels stay transparent.
 */
export async function encodeApng(frames, width, height, plays = 0) {
  if (!frames.length) throw new Error('no frames to encode');
  const parts = [Uint8Array.from(SIGNATURE)];
  const ihdr = new Uint8Array(13);
  ihdr.set(u32s(width, height));
  ihdr.set([8, 6, 0, 0, 0], 8); // 8 bits, RGBA, deflate, adaptive filters, no interlace
  parts.push(chunk('IHDR', ihdr), chunk('acTL', u32s(frames.length, plays)));
  let seq = 0;
  for (let f = 0; f < frames.length; f++) {
    const {rgba, delayMs} = frames[f];
    if (rgba.length !== width * height * 4) throw new Error(`frame ${f} is not ${width}x${height} RGBA`);
    const fctl = new Uint8Array(26);
    fctl.set(u32s(seq++, width, height, 0, 0));
    const view = new DataView(fctl.buffer);
    view.setUint16(20, Math.max(0, Math.min(65535, Math.round(delayMs ?? 100)))); // delay numerator
    view.setUint16(22, 1000); // ... over 1000: milliseconds
    fctl[24] = 0; // dispose: none
    fctl[25] = 0; // blend: source
    parts.push(chunk('fcTL', fctl));
    const data = await zlib(scanlines(rgba, width, height));
    if (f === 0) parts.push(chunk('IDAT', data));
    else {
      const fdat = new Uint8Array(4 + data.length);
      fdat.set(u32s(seq++));
      fdat.set(data, 4);
      parts.push(chunk('fdAT', fdat));
    }
  }
  parts.push(chunk('IEND', new Uint8Array(0)));
  return new Blob(parts, {type: 'image/png'});
}

