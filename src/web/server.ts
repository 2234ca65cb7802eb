/**
 * The explorer's web server (node:http, no framework): serves the page built
 * by Vite (dist/web/), the checkpoint's model as ONNX (exported on the fly
 * with exportUNetToOnnx, once, then cached), its config, a handful of data
 * set images for the forward view, and onnxruntime-web's wasm files.
 *
 * Routes:
 *   GET /                  the page (index.html and its assets, from webRoot)
 *   GET /api/config        { config, step, checkpoint, labelNames } (JSON)
 *   GET /api/model.onnx    the U-Net as ONNX bytes (EMA weights)
 *   GET /api/samples       { imageSize, channels, dataset, images: [{ label, name, pixels }] },
 *                          pixels = H·W·C bytes 0..255 (HWC); empty list when the data set is unavailable
 *   GET /ort/<file>        onnxruntime-web's ort-wasm-* .wasm / .mjs files from node_modules
 *
 * Every response carries COOP/COEP headers so the page is cross-origin
 * isolated and onnxruntime-web may use wasm threads.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isIP, type AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { DiffuseError } from '../errors.js';
import type { DiffuseConfig } from '../config.js';
import type { DatasetSpec } from '../data/index.js';
import { exportUNetToOnnx } from '../onnx/export-unet.js';
import { loadSamplingModel } from '../pipeline.js';

export interface ExplorerServerOptions {
  /** Checkpoint folder (or a run folder holding checkpoint/). */
  readonly checkpoint: string;
  /** TCP port; 0 (default 8080 in the CLI) picks a free one. */
  readonly port?: number;
  /** Interface to listen on (default 127.0.0.1: localhost only). */
  readonly host?: string;
  /** Folder of the built page (default: <package root>/dist/web). */
  readonly webRoot?: string;
  /** Data set images offered in the forward view (default 20: two per class when labelled). */
  readonly sampleImages?: number;
}

export interface ExplorerServer {
  /** http://host:port/ */
  readonly url: string;
  readonly port: number;
  readonly server: Server;
  close(): Promise<void>;
}

export interface SampleImage {
  readonly label: number | null;
  readonly name: string;
  /** H·W·C bytes, HWC order. */
  readonly pixels: number[];
}

export interface SamplesResponse {
  readonly dataset: string;
  readonly imageSize: number;
  readonly channels: number;
  readonly images: SampleImage[];
  /** Why there are no images, when the data set could not be loaded. */
  readonly note?: string;
}

export interface ConfigResponse {
  readonly config: DiffuseConfig;
  readonly step: number;
  readonly checkpoint: string;
  readonly labelNames: string[] | null;
}

/** <package root>, from dist/src/web/server.js (or src/web/server.ts). */
function packageRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(d, 'package.json'))) return d;
    d = dirname(d);
  }
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
}

/** Default folder of the built page. */
export function defaultWebRoot(): string {
  return join(packageRoot(), 'dist', 'web');
}

/** Folder holding onnxruntime-web's ort-wasm-* files. */
export function ortWebDistDir(): string {
  const require = createRequire(import.meta.url);
  let entry: string;
  try {
    entry = require.resolve('onnxruntime-web');
  } catch (err) {
    throw new DiffuseError(`onnxruntime-web is not installed (npm install onnxruntime-web): ${err instanceof Error ? err.message : String(err)}`);
  }
  return dirname(entry);
}

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.map': 'application/json; charset=utf-8',
  '.onnx': 'application/octet-stream',
};

const ISOLATION_HEADERS: Record<string, string> = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

function send(res: ServerResponse, status: number, type: string, body: string | Uint8Array, extra: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': String(Buffer.byteLength(body)), 'Cache-Control': 'no-cache', ...ISOLATION_HEADERS, ...extra });
  res.end(body);
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, MIME['.json']!, JSON.stringify(value));
}

function sendError(res: ServerResponse, status: number, message: string): void {
  sendJson(res, status, { error: message });
}

/** Resolve `rel` inside `root`, or null when it escapes root or is not a file. */
function fileInside(root: string, rel: string): string | null {
  const p = normalize(join(root, rel));
  if (p !== root && !p.startsWith(root.endsWith(sep) ? root : root + sep)) return null;
  try {
    return statSync(p).isFile() ? p : null;
  } catch {
    return null;
  }
}

async function loadSamples(config: DiffuseConfig, count: number): Promise<SamplesResponse> {
  const { imageSize, channels, dataset } = config.data;
  const base = { dataset, imageSize, channels };
  if (count <= 0) return { ...base, images: [] };
  try {
    const { loadDataset } = await import('../data/index.js');
    const spec: DatasetSpec | null = dataset.startsWith('folder:')
      ? { name: 'folder', dir: dataset.slice('folder:'.length), imageSize, channels, skipBad: true, limit: count }
      : dataset === 'mnist' || dataset === 'fashion-mnist'
        ? { name: dataset, imageSize, channels, limit: count }
        : null;
    if (spec === null) return { ...base, images: [], note: `data set '${dataset}' is not one the server can load` };
    const ds = await loadDataset(spec);
    const [n, h, w, c] = ds.shape;
    const per = h * w * c;
    const images: SampleImage[] = [];
    for (let i = 0; i < Math.min(n, count); i++) {
      const pixels: number[] = new Array<number>(per);
      for (let k = 0; k < per; k++) pixels[k] = Math.round(Math.min(255, Math.max(0, (ds.images[i * per + k]! + 1) * 127.5)));
      const label = ds.labels !== undefined ? ds.labels[i]! : null;
      const name = label !== null && ds.labelNames?.[label] !== undefined ? ds.labelNames[label]! : `#${i}`;
      images.push({ label, name, pixels });
    }
    // Labelled sets come class-balanced in class order; interleave so the first few show different classes.
    images.sort((a, b) => (a.label ?? 0) - (b.label ?? 0));
    const byLabel = new Map<number, SampleImage[]>();
    for (const im of images) {
      const k = im.label ?? 0;
      byLabel.set(k, [...(byLabel.get(k) ?? []), im]);
    }
    const interleaved: SampleImage[] = [];
    for (let round = 0; interleaved.length < images.length; round++) {
      for (const list of byLabel.values()) if (list[round] !== undefined) interleaved.push(list[round]!);
    }
    return { ...base, images: interleaved };
  } catch (err) {
    return { ...base, images: [], note: `cannot load data set '${dataset}': ${err instanceof Error ? err.message : String(err)}` };
  }
}

/**
 * Throw unless `host` is something this machine can listen on: 'localhost',
 * a loopback address, 0.0.0.0 / :: (every interface), or an address of one
 * of its network interfaces. Checked before the checkpoint is loaded.
 */
export function checkListenHost(host: string): void {
  if (host === 'localhost' || host === '0.0.0.0' || host === '::') return;
  const own = Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((a) => a.address));
  const hint = `use 127.0.0.1 (this machine only), 0.0.0.0 (every interface) or one of its addresses: ${own.join(', ')}`;
  if (isIP(host) === 0) throw new DiffuseError(`host '${host}' is not an IP address (or 'localhost'): ${hint}`);
  if (host.startsWith('127.') || host === '::1' || own.includes(host)) return;
  throw new DiffuseError(`host ${host} is not an address of this machine, so the server cannot listen on it: ${hint}`);
}

/**
 * Start the explorer server. Loads the checkpoint up front (so a bad
 * checkpoint fails here, with a DiffuseError) and exports ONNX on the first request.
 */
export async function startExplorerServer(opts: ExplorerServerOptions): Promise<ExplorerServer> {
  const port = opts.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new DiffuseError(`port must be an integer in 0..65535, got ${port}`);
  const host = opts.host ?? '127.0.0.1';
  checkListenHost(host);
  const count = opts.sampleImages ?? 20;
  if (!Number.isInteger(count) || count < 0 || count > 1000) throw new DiffuseError(`sampleImages must be an integer in 0..1000, got ${count}`);
  const webRoot = resolve(opts.webRoot ?? defaultWebRoot());
  if (!existsSync(join(webRoot, 'index.html'))) {
    throw new DiffuseError(`the explorer page is not built (no ${join(webRoot, 'index.html')}); run 'npm run build' first`);
  }
  const ortDir = ortWebDistDir();
  // a checkpoint, or a diffusers pipeline / unet/ folder (translated: pipeline.ts loadSamplingModel)
  const { config, params, step, checkpoint } = await loadSamplingModel(opts.checkpoint, { weights: 'ema' });
  if (config.model.crossAttention !== undefined) throw new DiffuseError(`${checkpoint}: a UNet2DConditionModel needs a text encoder's hidden states, which the explorer does not compute`);
  const configBody: ConfigResponse = { config, step, checkpoint, labelNames: config.data.labelNames ?? null };

  let onnx: Uint8Array | undefined;
  const onnxBytes = (): Uint8Array => {
    onnx ??= exportUNetToOnnx(config.model, params, {
      metadata: {
        'diffuse.schedule': config.diffusion.schedule,
        'diffuse.timesteps': String(config.diffusion.timesteps),
        'diffuse.prediction': config.diffusion.prediction,
        'diffuse.weights': 'ema',
        'diffuse.step': String(step),
        ...(config.data.labelNames !== undefined ? { 'diffuse.label_names': JSON.stringify(config.data.labelNames) } : {}),
      },
    });
    return onnx;
  };
  let samples: Promise<SamplesResponse> | undefined;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendError(res, 405, `method ${req.method ?? '?'} not allowed`);
    const url = new URL(req.url ?? '/', 'http://localhost');
    let path: string;
    try {
      path = decodeURIComponent(url.pathname);
    } catch {
      return sendError(res, 400, 'bad URL');
    }
    if (path === '/api/config') return sendJson(res, 200, configBody);
    if (path === '/api/model.onnx') return send(res, 200, MIME['.onnx']!, onnxBytes());
    if (path === '/api/samples') {
      samples ??= loadSamples(config, count);
      return sendJson(res, 200, await samples);
    }
    if (path.startsWith('/ort/')) {
      const name = path.slice('/ort/'.length);
      const file = /^ort-wasm-[\w.-]+\.(wasm|mjs)$/.test(name) ? fileInside(ortDir, name) : null;
      if (file === null) return sendError(res, 404, `no onnxruntime-web file '${name}'`);
      return send(res, 200, MIME[extname(file)]!, await readFile(file));
    }
    const file = fileInside(webRoot, path === '/' ? 'index.html' : path.slice(1));
    if (file === null) return sendError(res, 404, `not found: ${path}`);
    return send(res, 200, MIME[extname(file)] ?? 'application/octet-stream', await readFile(file));
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const msg = err instanceof Error ? err.message : String(err);
      if (!res.headersSent) sendError(res, 500, msg);
      else res.destroy();
    });
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      fail(err.code === 'EADDRINUSE' ? new DiffuseError(`port ${port} is already in use (try --port 0 for a free one)`)
        : err.code === 'EACCES' ? new DiffuseError(`not allowed to listen on port ${port} (ports below 1024 need privileges; try --port 0 for a free one)`)
          : new DiffuseError(`cannot listen on ${host}:${port}: ${err.code ?? err.message}`, { cause: err }));
    });
    server.listen(port, host, () => ok());
  });
  const addr = server.address() as AddressInfo;
  const shownHost = host === '0.0.0.0' || host === '127.0.0.1' ? 'localhost' : host;
  return {
    url: `http://${shownHost}:${addr.port}/`,
    port: addr.port,
    server,
    close: () => new Promise<void>((ok) => {
      server.closeAllConnections();
      server.close(() => ok());
    }),
  };
}

