/** `diffuse serve`: the explorer, a web page that runs diffusion in the browser. */
import { defineCommand } from './command.js';
import { CHECKPOINT } from './options.js';
import { checkListenHost, startExplorerServer } from '../web/server.js';

export const OPTIONS = {
  checkpoint: { ...CHECKPOINT, defaultText: 'mnist (the shipped MNIST model)' },
  port: { type: 'int', min: 0, max: 65535, default: 8080, arg: 'P', help: 'port (0 = any free port)' },
  host: { type: 'string', default: '127.0.0.1', arg: 'H', help: 'address to listen on: 127.0.0.1 (this machine only), 0.0.0.0 (every interface) or one of this machine\'s addresses' },
  images: { type: 'int', min: 0, max: 1000, default: 20, arg: 'N', help: 'data set images offered in the forward view' },
  'allow-host': { type: 'string', arg: 'NAMES', help: 'comma-separated host names the page may also be opened by (IP addresses, localhost and this machine\'s name always work; others are refused against DNS rebinding)' },
} as const;

export const command = defineCommand({
  name: 'serve',
  description: `Serve the explorer: a page where forward diffusion (noising a data set image or
your own, with any schedule) and reverse diffusion (the model generating images,
step by step) run in your browser, the model on onnxruntime-web (wasm, or WebGPU
when the browser has it). The checkpoint's U-Net is exported to ONNX on the fly.
Stop with Ctrl-C.`,
  options: OPTIONS,
  async run({ values: o }) {
    checkListenHost(o.host);
    const checkpoint = o.checkpoint ?? 'mnist';
    const allowedHosts = (o['allow-host'] ?? '').split(',').map((h) => h.trim()).filter((h) => h !== '');
    const srv = await startExplorerServer({ checkpoint, port: o.port, host: o.host, sampleImages: o.images, allowedHosts });
    process.stdout.write(`diffuse explorer: ${srv.url}  (model ${checkpoint}; Ctrl-C to stop)\n`);
    await new Promise<void>((done) => {
      const stop = (): void => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        void srv.close().then(done);
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
  },
});
