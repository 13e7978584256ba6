// Smoke test of the lab page in headless Chromium (playwright-core, Debian's chromium):
// backend badge, start training, charts. Not yet wired into .ci/run (issue 4).
// Usage: node tests/browser/smoke.mjs http://127.0.0.1:PORT/ [webgpu|cpu]
import { chromium } from 'playwright-core';

const url = process.argv[2] || 'http://127.0.0.1:8765/';
const webgpu = process.argv[3] !== 'cpu';
const args = ['--no-sandbox', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
if (webgpu) args.push('--enable-unsafe-webgpu');
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args, headless: true });
const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
page.on('console', m => console.log('console:', m.type(), m.text().slice(0, 300)));
page.on('pageerror', e => console.log('pageerror:', e.message));
const t0 = Date.now();
await page.goto(url + '?epochs=1&train=300&test=100&batch=50&ax2=1');
await page.waitForSelector('#backend', { timeout: 60000 });
await page.waitForFunction(() => !document.querySelector('#backend').textContent.includes('Looking'), null, { timeout: 60000 });
console.log('backend:', await page.textContent('#backend'), '| notice:', await page.textContent('#cpu-notice'));
console.log('data:', await page.textContent('#data-status'));
await page.waitForFunction(() => !document.querySelector('#start').disabled, null, { timeout: 60000 });
await page.click('#start');
await page.waitForFunction(() => [...document.querySelectorAll('#loss-chart polyline')]
  .some(p => p.getAttribute('points').trim().split(' ').length > 2), null, { timeout: 240000 });
console.log('first loss points after', (Date.now() - t0) / 1000, 's');
await page.screenshot({ path: 'mid-training.png' });
await page.waitForFunction(() => /^(Finished|Stopped)/.test(document.querySelector('#run-state').textContent),
  null, { timeout: 600000 });
console.log('state:', await page.textContent('#run-state'), 'after', (Date.now() - t0) / 1000, 's');
console.log('throughput:', await page.textContent('#throughput'));
await page.screenshot({ path: 'finished.png', fullPage: true });
await browser.close();
