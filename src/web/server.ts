/**
 * The explorer's web server (node:http, no framework): serves the page built
 * by Vite (dist/web/), the checkpoint's model as ONNX (exported on the fly
 * with exportCheckpointNetwork, once, then cached; a latent model's decoder
 * too), its config, a handful of data set images for the forward view, and
 * onnxruntime-web's wasm files.
 *
 * Routes:
 *   GET /                  the page (index.html and its assets, from webRoot)
 *   GET /api/config        { config, step, checkpoint, labelNames, latentShape } (JSON)
 *   GET /api/model.onnx    the U-Net as ONNX bytes (EMA weights); a checkpoint of K expert
 *                          networks (config.experts): ?expert=k, one model per expert
 *   GET /api/decoder.onnx  a latent model's decoder as ONNX bytes (latents / scaling factor -> images); 404 for a pixel model
 *   GET /api/samples       { imageSize, channels, dataset, images: [{ label, name, pixels }] },
 *                          pixels = H·W·C bytes 0..255 (HWC); empty list when the data set is unavailable
 *   GET /ort/<file>        onnxruntime-web's wasm runtime, copied into the page's build (web/vite.config.ts)
 *
 * Every response carries COOP/COEP headers so the page is cross-origin
 * isolated and onnxruntime-web may use wasm threads; an ETag (a request that
 * names it gets 304 Not Modified); gzip when the browser accepts it (text and
 * wasm, compressed once and kept); and Cache-Control: the content-hashed
 * assets/ for a year, everything else revalidated on each load. Requests whose
 * Host header is not this machine (an IP address, localhost, its host name,
 * or a name given in allowedHosts) are refused: a web page elsewhere cannot
 * reach the server through a DNS name rebound to 127.0.0.1. No response
 * names a folder of this machine.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, extname, join, normalize, resolve, sep } from 'node:path';
import { isIP, type AddressInfo } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import { promisify } from 'node:util';
import { gzip as gzipCb } from 'node:zlib';
import { DiffuseError } from '../errors.js';
import type { DiffuseConfig } from '../config.js';
import type { DatasetSpec } from '../data/index.js';
import type { ConfigResponse, SampleImage, SamplesResponse } from './explorer-handle.js';
import { exportCheckpointNetwork, type CheckpointNetwork } from '../onnx/export-checkpoint.js';
import { latentShape } from '../model/autoencoder-config.js';
import { loadSamplingModel } from '../pipeline.js';
import { packageRoot, SHIPPED_MODELS_DIR } from '../shipped.js';

export interface ExplorerServerOptions {
  /** Checkpoint folder (or a run folder holding checkpoint/), a shipped model by name, or a diffusers pipeline or unet/ folder. */
  readonly checkpoint: string;
  /** TCP port; 0 (default 8080 in the CLI) picks a free one. */
  readonly port?: number;
  /** Interface to listen on (default 127.0.0.1: localhost only). */
  readonly host?: string;
  /** Folder of the built page (default: <package root>/dist/web). */
  readonly webRoot?: string;
  /** Data set images offered in the forward view (default 20: two per class when labelled). */
  readonly sampleImages?: number;
  /** Host names the page may be reached by besides IP addresses, localhost and this machine's name (e.g. a DNS name of this machine). */
  readonly allowedHosts?: readonly string[];
}

export interface ExplorerServer {
  /** http://host:port/ */
  readonly url: string;
  readonly port: number;
  readonly server: Server;
  close(): Promise<void>;
}

export type { ConfigResponse, SampleImage, SamplesResponse } from './explorer-handle.js';

/** Default folder of the built page. */
export function defaultWebRoot(): string {
  return join(packageRoot(), 'dist', 'web');
}

/** What the page shows as the model's name: the shipped name, or the run's folder name (…/run/checkpoint -> run). */
export function modelDisplayName(checkpoint: string): string {
  const abs = resolve(checkpoint);
  if (dirname(abs) === SHIPPED_MODELS_DIR) return basename(abs);
  const name = basename(abs);
  return name === 'checkpoint' ? basename(dirname(abs)) : name;
}

/**
 * The config as the page may see it: a folder data set is named by its last
 * folder, a latent model's autoencoder checkpoint by its folder's name, not their paths.
 */
function publicConfig(config: DiffuseConfig): DiffuseConfig {
  const d = config.data.dataset;
  const data = d.startsWith('folder:') ? { ...config.data, dataset: `folder:${basename(d.slice('folder:'.length))}` } : config.data;
  const src = config.latent?.source;
  const latent = config.latent === undefined || src === undefined ? config.latent : { ...config.latent, source: { ...src, checkpoint: modelDisplayName(src.checkpoint) } };
  return { ...config, data, ...(latent !== undefined ? { latent } : {}) };
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

/** Content types worth gzipping (the ONNX weights barely compress). */
const COMPRESSIBLE = new Set(['.html', '.js', '.mjs', '.css', '.json', '.wasm', '.map', '.svg']);
/** Cache-Control of content whose URL changes when it does (Vite's content-hashed assets/). */
const IMMUTABLE = 'public, max-age=31536000, immutable';
/** Cache-Control of everything else: the browser keeps it and revalidates it (ETag) on each load. */
const REVALIDATE = 'no-cache';

/** A response body with its ETag and, made once on first use, its gzip. */
class Body {
  readonly etag: string;
  private gz: Promise<Buffer> | undefined;
  constructor(readonly bytes: Buffer, readonly type: string, readonly compressible: boolean) {
    this.etag = `"${createHash('sha1').update(bytes).digest('base64url')}"`;
  }
  static json(value: unknown): Body {
    return new Body(Buffer.from(JSON.stringify(value)), MIME['.json']!, true);
  }
  gzip(): Promise<Buffer> {
    this.gz ??= promisify(gzipCb)(this.bytes, { level: 6 });
    return this.gz;
  }
}

function acceptsGzip(req: IncomingMessage): boolean {
  const a = req.headers['accept-encoding'];
  return typeof a === 'string' && /(^|,)\s*gzip\s*(;\s*q=(?!0(\.0*)?\s*($|,))[\d.]+)?\s*($|,)/.test(a);
}

async function sendBody(req: IncomingMessage, res: ServerResponse, body: Body, cacheControl: string): Promise<void> {
  const headers: Record<string, string> = { 'Content-Type': body.type, 'Cache-Control': cacheControl, ETag: body.etag, ...ISOLATION_HEADERS };
  if (body.compressible) headers['Vary'] = 'Accept-Encoding';
  const inm = req.headers['if-none-match'];
  if (typeof inm === 'string' && inm.split(',').some((t) => t.trim().replace(/^W\//, '') === body.etag)) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  let bytes = body.bytes;
  if (body.compressible && acceptsGzip(req)) {
    bytes = await body.gzip();
    headers['Content-Encoding'] = 'gzip';
  }
  headers['Content-Length'] = String(bytes.byteLength);
  res.writeHead(200, headers);
  res.end(req.method === 'HEAD' ? undefined : bytes);
}

function sendError(res: ServerResponse, status: number, message: string): void {
  const body = JSON.stringify({ error: message });
  res.writeHead(status, { 'Content-Type': MIME['.json']!, 'Content-Length': String(Buffer.byteLength(body)), 'Cache-Control': 'no-store', ...ISOLATION_HEADERS });
  res.end(body);
}

/** The host name of a Host header ('[::1]:8080' -> '::1', 'Example.com.' -> 'example.com'); null when absent. */
function hostOf(header: string | undefined): string | null {
  if (header === undefined || header === '') return null;
  const m = /^\[([^\]]+)\](?::\d+)?$/.exec(header) ?? /^([^:]+)(?::\d+)?$/.exec(header);
  return m === null ? header.toLowerCase() : m[1]!.toLowerCase().replace(/\.$/, '');
}

/**
 * Whether a request's Host header names this server as the page itself would:
 * an IP address, localhost (or *.localhost), this machine's host name, or a
 * name in `allowed`. A page on another site that rebinds its DNS name to this
 * machine sends its own name and is refused.
 */
export function hostAllowed(header: string | undefined, allowed: readonly string[] = []): boolean {
  const h = hostOf(header);
  if (h === null) return false;
  if (isIP(h) !== 0) return true;
  const me = hostname().toLowerCase();
  return h === 'localhost' || h.endsWith('.localhost') || h === me || h === `${me}.local` || allowed.some((a) => a.toLowerCase() === h);
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
        : dataset === 'emoji'
          ? { name: 'emoji', imageSize, channels, limit: count, skipBad: true }
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
  const allowedHosts = opts.allowedHosts ?? [];
  // a checkpoint or shipped model, or a diffusers pipeline / unet/ folder (translated: pipeline.ts loadSamplingModel)
  const { config, params, autoencoder, step, checkpoint } = await loadSamplingModel(opts.checkpoint, { weights: 'ema' });
  if (config.model.crossAttention !== undefined) throw new DiffuseError(`${checkpoint}: a UNet2DConditionModel needs a text encoder's hidden states, which the explorer does not compute`);
  const configResponse: ConfigResponse = {
    config: publicConfig(config), step, checkpoint: modelDisplayName(checkpoint), labelNames: config.data.labelNames ?? null,
    latentShape: config.latent !== undefined ? latentShape(config.latent.autoencoder) : null,
  };
  const configBody = Body.json(configResponse);

  // The networks as ONNX, each exported on its first request and kept: the U-Net
  // (one file, or one per expert: config.experts) and a latent model's decoder.
  const onnx = new Map<CheckpointNetwork, Body[]>();
  const onnxBodies = (network: CheckpointNetwork): Body[] => {
    let bodies = onnx.get(network);
    if (bodies === undefined) {
      bodies = exportCheckpointNetwork(config, { params, autoencoder }, network, { step, weights: 'ema' }).map((b) => new Body(Buffer.from(b), MIME['.onnx']!, false));
      onnx.set(network, bodies);
    }
    return bodies;
  };
  const networks = config.experts?.count ?? 1;
  /** The U-Net's ONNX model of network k (0 = the one shared network), or an error message. */
  const unetBody = (expert: string | null): Body | string => {
    const k = expert === null ? 0 : Number(expert);
    if (expert === null && networks > 1) return `this checkpoint has ${networks} expert networks: ask for api/model.onnx?expert=0..${networks - 1}`;
    if (!Number.isInteger(k) || k < 0 || k >= networks || (expert !== null && !/^\d+$/.test(expert))) return `no expert '${expert}': this checkpoint has ${networks === 1 ? 'one network (no ?expert=)' : `experts 0..${networks - 1}`}`;
    return onnxBodies('unet')[k]!;
  };
  let samples: Promise<Body> | undefined;

  // The page's files, read (and gzipped) once; re-read when a file changes (a rebuild while serving).
  const files = new Map<string, { mtimeMs: number; size: number; body: Promise<Body> }>();
  const fileBody = (file: string): Promise<Body> => {
    const st = statSync(file);
    const hit = files.get(file);
    if (hit !== undefined && hit.mtimeMs === st.mtimeMs && hit.size === st.size) return hit.body;
    const ext = extname(file);
    const body = readFile(file).then((b) => new Body(b, MIME[ext] ?? 'application/octet-stream', COMPRESSIBLE.has(ext)));
    files.set(file, { mtimeMs: st.mtimeMs, size: st.size, body });
    body.catch(() => files.delete(file));
    return body;
  };
  // Compress the onnxruntime-web wasm (~27 MB -> ~7 MB) now, in the background, so the first page load need not wait for it.
  const ortRoot = join(webRoot, 'ort');
  if (existsSync(ortRoot)) {
    for (const name of readdirSync(ortRoot)) {
      if (name.endsWith('.wasm')) void fileBody(join(ortRoot, name)).then((b) => b.gzip()).catch(() => {});
    }
  }

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendError(res, 405, `method ${req.method ?? '?'} not allowed`);
    if (!hostAllowed(req.headers.host, allowedHosts)) {
      return sendError(res, 403, `host '${req.headers.host ?? ''}' is not this server's: open it by IP address, localhost or this machine's name (or start it with --allow-host ${hostOf(req.headers.host) ?? 'NAME'})`);
    }
    const url = new URL(req.url ?? '/', 'http://localhost');
    let path: string;
    try {
      path = decodeURIComponent(url.pathname);
    } catch {
      return sendError(res, 400, 'bad URL');
    }
    if (path === '/api/config') return sendBody(req, res, configBody, REVALIDATE);
    if (path === '/api/model.onnx') {
      const body = unetBody(url.searchParams.get('expert'));
      return typeof body === 'string' ? sendError(res, 404, body) : sendBody(req, res, body, REVALIDATE);
    }
    if (path === '/api/decoder.onnx') {
      if (config.latent === undefined) return sendError(res, 404, 'this model is not a latent model: it works on pixels and has no decoder');
      return sendBody(req, res, onnxBodies('decoder')[0]!, REVALIDATE);
    }
    if (path === '/api/samples') {
      samples ??= loadSamples(config, count).then((s) => Body.json(s));
      return sendBody(req, res, await samples, REVALIDATE);
    }
    const file = fileInside(webRoot, path === '/' ? 'index.html' : path.slice(1));
    if (file === null) return sendError(res, 404, `not found: ${path}`);
    return sendBody(req, res, await fileBody(file), path.startsWith('/assets/') ? IMMUTABLE : REVALIDATE);
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

