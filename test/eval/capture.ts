/**
 * Run a CLI command in this process, capturing the text it writes to stdout
 * and stderr. Bytes pass through untouched: the test runner's own messages to
 * its parent process (a finished test's report can still be on its way when
 * the next test starts) must not end up in the captured text.
 */
export async function capture(fn: () => Promise<unknown>): Promise<{ out: string; err: string }> {
  const ow = process.stdout.write.bind(process.stdout);
  const ew = process.stderr.write.bind(process.stderr);
  let out = '', err = '';
  process.stdout.write = ((s: string | Uint8Array) => { if (typeof s === 'string') out += s; else ow(s); return true; }) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => { if (typeof s === 'string') err += s; else ew(s); return true; }) as typeof process.stderr.write;
  try {
    await fn();
  } finally {
    process.stdout.write = ow;
    process.stderr.write = ew;
  }
  return { out, err };
}
