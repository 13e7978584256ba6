// Writes a tiny CIFAR-10 directory in the official binary format (data_batch_1..5.bin,
// test_batch.bin; each record = 1 label byte + 3072 channel-major pixels) whose classes are
// learnable: each class has its own colour and stripe direction, plus seeded noise.
// Usage: node tests/browser/make-cifar.mjs DIR [images per training batch] [test images]
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [dir, perBatchArg = '100', testArg = '200'] = process.argv.slice(2);
if (!dir) {
  console.error('usage: node make-cifar.mjs DIR [images per training batch] [test images]');
  process.exit(2);
}
const perBatch = Number(perBatchArg);
const testCount = Number(testArg);

let state = 0x2545f491;
function noise() {
  // xorshift32: a fixed stream, so every run writes the same bytes.
  state ^= state << 13; state >>>= 0;
  state ^= state >>> 17;
  state ^= state << 5; state >>>= 0;
  return (state % 61) - 30;
}

function records(count, offset) {
  const out = Buffer.alloc(count * 3073);
  for (let i = 0; i < count; i++) {
    const label = (i + offset) % 10;
    const base = i * 3073;
    out[base] = label;
    for (let c = 0; c < 3; c++) {
      const colour = 40 + ((label * 37 + c * 91) % 176);
      for (let y = 0; y < 32; y++) {
        for (let x = 0; x < 32; x++) {
          const stripe = ((label % 2 ? x : y) >> 2) % 2 ? 30 : -30;
          const v = colour + stripe + noise();
          out[base + 1 + c * 1024 + y * 32 + x] = Math.max(0, Math.min(255, v));
        }
      }
    }
  }
  return out;
}

mkdirSync(dir, { recursive: true });
for (let b = 1; b <= 5; b++) {
  writeFileSync(join(dir, `data_batch_${b}.bin`), records(perBatch, b));
}
writeFileSync(join(dir, 'test_batch.bin'), records(testCount, 0));
console.log(`wrote ${5 * perBatch} training and ${testCount} test images to ${dir}`);
