import { test } from 'node:test';
import assert from 'node:assert/strict';
import { escapeXml, formatTick, logTicks, niceTicks, svgPlot } from '../../bench/study-plot.js';

/** Tags of an XML document balance (no parser in the standard library: a small stack check). */
function assertWellFormed(svg: string): void {
  const stack: string[] = [];
  for (const m of svg.matchAll(/<(\/?)([a-zA-Z][\w-]*)([^>]*?)(\/?)>/g)) {
    const [, close, name, , self] = m;
    if (self === '/') continue;
    if (close === '/') assert.equal(stack.pop(), name, `closing </${name}> does not match`);
    else stack.push(name!);
  }
  assert.deepEqual(stack, [], 'unclosed tags');
  // Text outside tags must not hold raw '<' or '&' that is not an entity.
  const text = svg.replace(/<[^>]*>/g, '');
  assert.doesNotMatch(text, /&(?!amp;|lt;|gt;|quot;|apos;)/);
}

function circles(svg: string): { cx: number; cy: number }[] {
  return [...svg.matchAll(/<circle class="point" cx="([-\d.]+)" cy="([-\d.]+)"/g)].map((m) => ({ cx: Number(m[1]), cy: Number(m[2]) }));
}

test('niceTicks cover the range with 1/2/5 steps', () => {
  assert.deepEqual(niceTicks(0, 1), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(3, 97), [0, 20, 40, 60, 80, 100]);
  const t = niceTicks(0.013, 0.042);
  assert.ok(t[0]! <= 0.013 && t[t.length - 1]! >= 0.042);
  assert.equal(niceTicks(5, 5).length > 1, true);
  assert.throws(() => niceTicks(2, 1));
});

test('logTicks: decades, with 2 and 5 when the span is short', () => {
  assert.deepEqual(logTicks(1, 1000), [1, 10, 100, 1000]);
  assert.deepEqual(logTicks(0.02, 0.3), [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1]);
  assert.throws(() => logTicks(0, 10), /positive/);
  assert.equal(formatTick(0.0005), '5e-4');
  assert.equal(formatTick(250), '250');
  assert.equal(formatTick(0.1), '0.1');
});

test('svgPlot writes a well-formed SVG with one marker per point, labels escaped', () => {
  const svg = svgPlot({
    title: 'FID <vs> time & more',
    xLabel: 'x',
    yLabel: 'y',
    series: [
      { name: 'a', points: [{ x: 1, y: 5, label: 'p<1>' }, { x: 2, y: 7 }, { x: 3, y: 6 }] },
      { name: 'b "quoted"', points: [{ x: 2, y: 1 }], line: false },
      { name: 'hidden markers', points: [{ x: 1, y: 2 }, { x: 3, y: 3 }], markers: false },
    ],
    refLines: [{ y: 4, label: 'floor 4.0' }],
  });
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.match(svg, /<\/svg>\n$/);
  assertWellFormed(svg);
  assert.equal(circles(svg).length, 4);
  assert.ok(svg.includes('FID &lt;vs&gt; time &amp; more'));
  assert.ok(svg.includes('p&lt;1&gt;'));
  assert.ok(svg.includes('b &quot;quoted&quot;'));
  assert.equal((svg.match(/class="ref"/g) ?? []).length, 1);
  assert.equal((svg.match(/class="series"/g) ?? []).length, 2); // 'b' has a single point and no line
});

test('svgPlot maps values monotonically; log axes space decades evenly', () => {
  const svg = svgPlot({
    title: 't', xLabel: 'x', yLabel: 'y', logX: true,
    series: [{ name: 's', points: [{ x: 1, y: 10 }, { x: 10, y: 20 }, { x: 100, y: 30 }] }],
  });
  const c = circles(svg);
  assert.equal(c.length, 3);
  // x: equal steps per decade; y: larger values higher up (smaller cy).
  assert.ok(Math.abs((c[1]!.cx - c[0]!.cx) - (c[2]!.cx - c[1]!.cx)) < 0.02);
  assert.ok(c[0]!.cx < c[1]!.cx);
  assert.ok(c[0]!.cy > c[1]!.cy && c[1]!.cy > c[2]!.cy);
  // Linear y: 10 -> 20 -> 30 evenly spaced too.
  assert.ok(Math.abs((c[0]!.cy - c[1]!.cy) - (c[1]!.cy - c[2]!.cy)) < 0.02);
  assert.throws(() => svgPlot({ title: 't', xLabel: 'x', yLabel: 'y', logY: true, series: [{ name: 's', points: [{ x: 1, y: 0 }] }] }), /logarithmic/);
  assert.throws(() => svgPlot({ title: 't', xLabel: 'x', yLabel: 'y', series: [{ name: 's', points: [{ x: 1, y: NaN }] }] }), /non-finite/);
});

test('escapeXml escapes the five XML specials', () => {
  assert.equal(escapeXml(`<a href="x">&'`), '&lt;a href=&quot;x&quot;&gt;&amp;&apos;');
});
