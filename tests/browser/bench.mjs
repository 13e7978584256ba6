// The lab page's speed, as a visitor meets it (a benchmark: it prints figures and checks none).
// For each backend asked for, in headless Chromium: the time from opening the page to Start being
// enabled, from Start to every default arm's first loss point, each arm's training images/s in
// the run's last epoch, and the gzipped size of the page's and the worker's wasm.
//
// Usage: node tests/browser/bench.mjs DIST_DIR [cpu|webgpu ...]   (default: cpu webgpu)
//   DIST_DIR: a built page (`trunk build [--release]`) with a CIFAR-10 subset in DIST_DIR/data/
//   (tests/browser/run.sh makes one; `adaexp data subset` too).
//   RUN: the page's query for the run (default `epochs=2&train=400&test=100&batch=50`).
//   AGAIN=1: after the run, Reset and a second run on the same page (the worker's kernels are
//   compiled then: what warming up before Start could give at best).
//   ROUNDS: how many times each backend is measured, alternating (default 1).
//   CHROMIUM: the browser (default /usr/bin/chromium).
// Prints one JSON object per measurement, then a summary line per backend.
import { readFile, readdir } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { serve } from './serve.mjs';

const [distArg, ...backendArgs] = process.argv.slice(2);
if (!distArg) {
  console.error('usage: node tests/browser/bench.mjs DIST_DIR [cpu|webgpu ...]');
  process.exit(2);
}
const backends = backendArgs.length ? backendArgs : ['cpu', 'webgpu'];
for (const b of backends) {
  if (b !== 'cpu' && b !== 'webgpu') {
    console.error(`unknown backend "${b}": expected cpu or webgpu`);
    process.exit(2);
  }
}
const dist = resolve(distArg);
const RUN = process.env.RUN ?? 'epochs=2&train=400&test=100&batch=50';
const ROUNDS = Number(process.env.ROUNDS ?? 1);
const ARMS = ['SGDM', 'Adam', 'Padam', 'AdaExp'];
const MINUTE = 60_000;

const { server, base } = await serve(dist);

const sizes = {};
for (const name of await readdir(dist)) {
  if (!name.endsWith('.wasm')) continue;
  const body = await readFile(join(dist, name));
  const role = name.startsWith('lab-worker') ? 'worker' : 'page';
  sizes[role] = { bytes: body.length, gzipped: gzipSync(body, { level: 9 }).length };
}

async function measure(backend) {
  const args = ['--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'];
  if (backend === 'webgpu') args.push('--enable-unsafe-webgpu');
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args, headless: true });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const opened = Date.now();
    await page.goto(`${base}?${RUN}`);
    await page.waitForFunction(() => document.querySelector('#start')?.disabled === false, null, { timeout: 5 * MINUTE, polling: 50 });
    const ready = Date.now();
    const badge = await page.textContent('#backend');
    if (backend === 'webgpu' && !badge.startsWith('WebGPU')) throw new Error(`no WebGPU here: the badge says "${badge}"`);
    // A visitor who reads the page first: Start once the worker has prepared the GPU.
    let prepared;
    if (process.env.WAIT_PREPARED === '1' && backend === 'webgpu') {
      const preparing = () => page.textContent('#backend').then(t => t.includes('preparing'));
      const seen = await page.waitForFunction(() => document.querySelector('#backend').textContent.includes('preparing'),
        null, { timeout: 10_000, polling: 50 }).then(() => true, () => false);
      if (seen) await page.waitForFunction(() => !document.querySelector('#backend').textContent.includes('preparing'),
        null, { timeout: 10 * MINUTE, polling: 100 });
      prepared = seen ? (Date.now() - opened) / 1000 : null;
      if (await preparing()) throw new Error('still preparing');
    }
    const first = await runOnce(page);
    // The same page again: the worker keeps its device, so its kernels are compiled already.
    const again = process.env.AGAIN === '1' ? await (async () => {
      await page.click('#reset');
      await page.waitForFunction(() => document.querySelector('#start')?.disabled === false, null, { timeout: MINUTE, polling: 50 });
      return runOnce(page);
    })() : undefined;
    return {
      backend: badge.split(/[(:]/)[0].trim(),
      run: RUN,
      seconds_to_ready: (ready - opened) / 1000,
      ...(prepared !== undefined ? { seconds_to_prepared: prepared } : {}),
      seconds_open_to_first_point: (first.anyPoint - opened) / 1000,
      ...first.figures,
      ...(again ? { again: again.figures } : {}),
      wasm: sizes,
    };
  } finally {
    await browser.close();
  }
}

// Start, the first loss point (of any arm, and of every arm), the end: times, the run-state lines shown until
// the first point (with their seconds since Start) and each arm's images/s in the last epoch.
async function runOnce(page) {
  await page.evaluate(() => {
    window.__states = [];
    window.__clicked = performance.now();
    window.__stateWatch = setInterval(() => {
      const text = document.querySelector('#run-state').textContent.replace(/^Warming up… \d+ s: /, '');
      if (window.__states.at(-1)?.[1] !== text) window.__states.push([((performance.now() - window.__clicked) / 1000).toFixed(1), text]);
    }, 50);
  });
  const clicked = Date.now();
  await page.click('#start');
  // When some (`every` false) or every default arm has a finite loss point.
  const points = every => page.waitForFunction(({ arms, every }) => arms[every ? 'every' : 'some'](arm => {
    const line = document.querySelector(`#loss-chart polyline[data-series="${arm}"]`);
    return line && line.getAttribute('points').trim().split(/\s+/).filter(Boolean).some(p => p.split(',').map(Number).every(Number.isFinite));
  }), { arms: ARMS, every }, { timeout: 15 * MINUTE, polling: 50 });
  await points(false);
  const anyPoint = Date.now();
  await points(true);
  const firstPoint = Date.now();
  const states = await page.evaluate(() => { clearInterval(window.__stateWatch); return window.__states; });
  await page.waitForFunction(() => /^(Finished|Stopped)/.test(document.querySelector('#run-state').textContent),
    null, { timeout: 30 * MINUTE, polling: 200 });
  const ended = Date.now();
  const state = await page.textContent('#run-state');
  if (!state.startsWith('Finished')) throw new Error(`the run ended with: ${state}`);
  const lines = await page.$$eval('#throughput li', items => items.map(i => i.textContent));
  const imagesPerSecond = Object.fromEntries(lines.map(line => {
    const [, arm, rate] = line.match(/^(.*): (\d+) images\/s/);
    return [arm, Number(rate)];
  }));
  return {
    firstPoint,
    anyPoint,
    figures: {
      seconds_to_first_point: (anyPoint - clicked) / 1000,
      seconds_to_every_arms_first_point: (firstPoint - clicked) / 1000,
      seconds_to_end: (ended - clicked) / 1000,
      images_per_second: imagesPerSecond,
      until_first_point: states.map(([t, text]) => `${t} s ${text}`),
    },
  };
}

const all = Object.fromEntries(backends.map(b => [b, []]));
for (let round = 0; round < ROUNDS; round++) {
  for (const backend of backends) {
    const result = await measure(backend);
    all[backend].push(result);
    console.log(JSON.stringify(result));
  }
}
const range = values => {
  const low = Math.min(...values), high = Math.max(...values);
  return low === high ? `${low}` : `${low}–${high}`;
};
for (const [backend, results] of Object.entries(all)) {
  const rates = results.flatMap(r => Object.values(r.images_per_second));
  console.log(`${backend}: first point ${range(results.map(r => r.seconds_to_first_point.toFixed(1)))} s after Start, `
    + `${range(results.map(r => r.seconds_open_to_first_point.toFixed(1)))} s after opening; `
    + `${range(rates)} images/s per arm; worker ${(sizes.worker?.gzipped / 1e6).toFixed(2)} MB gzipped, `
    + `page ${(sizes.page?.gzipped / 1e6).toFixed(3)} MB`);
}
server.close();
