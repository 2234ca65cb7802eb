import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ema, formatDuration, formatLoss, ProgressBar } from '../../src/io/progress.js';

function sink(isTTY: boolean): { out: string[]; write(s: string): void; isTTY: boolean } {
  const out: string[] = [];
  return { out, isTTY, write: (s: string) => { out.push(s); } };
}

test('formatDuration and formatLoss', () => {
  assert.equal(formatDuration(0), '00:00');
  assert.equal(formatDuration(75), '01:15');
  assert.equal(formatDuration(3725), '1:02:05');
  assert.equal(formatDuration(NaN), '--:--');
  assert.equal(formatLoss(0.031234), '0.03123');
  assert.equal(formatLoss(0.00001234), '1.234e-5');
});

test('Ema is bias-corrected: a constant stream reads as that constant', () => {
  const e = new Ema(0.9);
  assert.ok(Number.isNaN(e.value));
  e.push(2);
  assert.ok(Math.abs(e.value - 2) < 1e-12);
  e.push(2); e.push(2);
  assert.ok(Math.abs(e.value - 2) < 1e-12);
  const f = new Ema(0.5);
  f.push(0); f.push(4); // acc = 0.5*(0.5*0)+0.5*4 = 2; corr = 1-0.25
  assert.ok(Math.abs(f.value - 2 / 0.75) < 1e-12);
});

test('ETA, rate and line content with an injected clock (non-TTY prints every N s)', () => {
  let t = 0;
  const s = sink(false);
  const bar = new ProgressBar({ total: 100, label: 'train', stream: s, now: () => t, lineEverySec: 10, smoothing: 0.5, barWidth: 10 });
  t = 1000;
  bar.update(10, { loss: 1, items: 640 });
  assert.equal(s.out.length, 1); // first update prints
  t = 5000;
  bar.update(20, { loss: 0.5, items: 640 });
  assert.equal(s.out.length, 1); // < 10 s since last line
  assert.equal(bar.etaSec(), (80 * 5) / 20);
  assert.equal(bar.rate(), 1280 / 5);
  const line = bar.render();
  assert.match(line, /^train  20\/100 \[██░░░░░░░░\]  20\.0% loss 0\.6667 256 img\/s 00:05<00:20$/);
  t = 12000;
  bar.update(30, { loss: 0.5 });
  assert.equal(s.out.length, 2);
  assert.ok(s.out.every((l) => l.endsWith('\n') && !l.includes('\r')));
  bar.finish('done');
  assert.match(s.out.at(-2)!, /30\/100/);
  assert.equal(s.out.at(-1), 'done\n');
  bar.finish();
  assert.equal(s.out.length, 4); // idempotent
});

test('TTY: redraws in place with \\r, throttled; resumed start counts rate from start', () => {
  let t = 0;
  const s = sink(true);
  const bar = new ProgressBar({ total: 50, start: 40, stream: s, now: () => t, redrawMs: 100 });
  t = 2000;
  bar.tick(2);
  t = 2050;
  bar.tick(1); // throttled
  assert.equal(s.out.length, 1);
  assert.ok(s.out[0]!.startsWith('\r'));
  assert.equal(bar.etaSec(), ((50 - 43) * 2.05) / 3);
  t = 4000;
  bar.update(50);
  bar.finish();
  assert.equal(s.out.at(-1), '\n');
  assert.match(s.out.at(-2)!, /^\r50\/50 .*100\.0%/);
});

test('quietForMs: a job done sooner draws nothing at all; a slower one draws once the quiet time is over', () => {
  let t = 0;
  const quick = sink(true);
  const a = new ProgressBar({ total: 10, stream: quick, now: () => t, quietForMs: 2000 });
  for (let i = 1; i <= 10; i++) { t = i * 100; a.update(i, { items: 1 }); }
  a.finish();
  assert.deepEqual(quick.out, []);
  t = 0;
  const slow = sink(true);
  const b = new ProgressBar({ total: 10, stream: slow, now: () => t, quietForMs: 2000 });
  t = 1500; b.update(3);
  assert.equal(slow.out.length, 0);
  t = 2500; b.update(5);
  assert.equal(slow.out.length, 1);
  assert.match(slow.out[0]!, / 5\/10 /);
  t = 2600; b.finish();
  assert.equal(slow.out.at(-1), '\n');
});
