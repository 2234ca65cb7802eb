/** `diffuse serve`: the explorer, a web page that runs diffusion in the browser. */
import { Flags, type ParsedArgs } from './args.js';
import { DiffuseError } from '../errors.js';
import { shippedModelDir } from '../pipeline.js';
import { startExplorerServer } from '../web/server.js';

export const HELP = `usage: diffuse serve [--checkpoint DIR] [--port P]

Serve the explorer on localhost: a page where forward diffusion (noising a data
set image or your own, with any schedule) and reverse diffusion (the model
generating images, step by step) run in your browser, the model on
onnxruntime-web (wasm, or WebGPU when the browser has it). The checkpoint's
U-Net is exported to ONNX on the fly. Stop with Ctrl-C.

options:
  --checkpoint DIR   checkpoint folder or run folder (default: the shipped model, models/mnist)
  --port P           port (default 8080; 0 = any free port)
  --host H           interface to listen on (default 127.0.0.1; 0.0.0.0 = every interface)
  --images N         data set images offered in the forward view (default 20)
  --help             show this help`;

export async function run(args: ParsedArgs): Promise<void> {
  const f = new Flags(args);
  const checkpoint = f.string('checkpoint', shippedModelDir());
  const port = f.int('port', 8080);
  const host = f.string('host', '127.0.0.1');
  const images = f.int('images', 20);
  f.rejectUnknown();
  if (args.positional.length > 0) throw new DiffuseError(`serve takes no positional arguments, got '${args.positional.join(' ')}' (see diffuse serve --help)`);
  const srv = await startExplorerServer({ checkpoint, port, host, sampleImages: images });
  process.stdout.write(`diffuse explorer: ${srv.url}  (checkpoint ${checkpoint}; Ctrl-C to stop)\n`);
  await new Promise<void>((done) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      void srv.close().then(done);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
