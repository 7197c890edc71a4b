// What every Node driver of the page shares (tests/browser/*.mjs, benchmarks/page_speed.mjs): playwright-core from
// mobile_demo's npm packages, Debian's Chromium started headless with the flags this closed network needs, a fake
// camera playing a y4m clip where one is given, and `--key value` arguments.
import {createRequire} from 'node:module';
import path from 'node:path';

const require = createRequire(path.resolve('mobile_demo/package.json'));
const {chromium} = require('playwright-core');

export const CHROMIUM = '/usr/bin/chromium';

// Without the background-networking flags Chromium keeps trying to reach Google's hosts, which this machine refuses.
const FLAGS = ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-default-apps'];

/** `--key value` pairs of argv over `defaults` (values stay strings). */
export function parseArgs(argv, defaults = {}) {
  const a = {chromium: CHROMIUM, ...defaults};
  for (let i = 0; i < argv.length; i += 2) a[argv[i].replace(/^--/, '')] = argv[i + 1];
  return a;
}

/**
 * Headless Chromium (`executablePath`, default Debian's). camera: true for a fake camera (the browser's own
 * pattern), or a y4m file it plays; permission is still to be granted by the context.
 */
export function launch({executablePath = CHROMIUM, camera = null} = {}) {
  const args = [...FLAGS];
  if (camera) args.push('--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream');
  if (typeof camera === 'string') args.push(`--use-file-for-fake-video-capture=${path.resolve(camera)}`);
  return chromium.launch({executablePath, headless: true, args});
}
