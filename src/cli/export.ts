/** `diffuse export`: a checkpoint's U-Net as an ONNX file (for ONNX Runtime, Node or browser). */
import { Flags, type ParsedArgs } from './args.js';
import { DiffuseError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { loadModelWeights } from '../train/checkpoint.js';
import { DEFAULT_OPSET, exportUNetToOnnx, MAX_OPSET, MIN_OPSET } from '../onnx/export-unet.js';

export const HELP = `usage: diffuse export --checkpoint DIR [options]

Write the checkpoint's U-Net as an ONNX model: inputs x float32 [N,H,W,C] (NHWC),
t float32 [N] (timestep index), classes int64 [N] (class-conditional models only;
numClasses = no class) or tokens int64 [N,L] (text models only: prompt token ids,
0 = pad; the vocabulary is in the metadata); output out float32 [N,H,W,outC].
The batch size is dynamic.
The model config and the diffusion settings (schedule, timesteps, prediction) are
stored in the file's metadata.

options:
  --checkpoint DIR   checkpoint folder (required)
  --weights W        ema (default) or model (the raw trained weights)
  --format F         onnx (the only format)
  --out FILE         output file (default model.onnx)
  --opset N          ONNX opset, ${MIN_OPSET}..${MAX_OPSET} (default ${DEFAULT_OPSET})
  --help             show this help`;

export async function run(args: ParsedArgs): Promise<void> {
  const f = new Flags(args);
  const checkpoint = f.string('checkpoint');
  const weights = f.choice('weights', ['ema', 'model'] as const, 'ema');
  f.choice('format', ['onnx'] as const, 'onnx');
  const out = f.string('out', 'model.onnx');
  const opset = f.int('opset', DEFAULT_OPSET);
  f.rejectUnknown();
  if (args.positional.length > 0) throw new DiffuseError(`export takes no positional arguments, got '${args.positional.join(' ')}' (see diffuse export --help)`);
  if (checkpoint === undefined) throw new DiffuseError('export needs --checkpoint DIR (see diffuse export --help)');
  const { config, params, step } = await loadModelWeights(checkpoint, weights);
  const bytes = exportUNetToOnnx(config.model, params, {
    opset,
    metadata: {
      'diffuse.schedule': config.diffusion.schedule,
      'diffuse.timesteps': String(config.diffusion.timesteps),
      'diffuse.prediction': config.diffusion.prediction,
      'diffuse.weights': weights,
      'diffuse.step': String(step),
      ...(config.data.labelNames !== undefined ? { 'diffuse.label_names': JSON.stringify(config.data.labelNames) } : {}),
    },
  });
  await writeFileAtomic(out, bytes);
  const mb = (bytes.length / 1e6).toFixed(2);
  process.stdout.write(`wrote ${out}: ONNX opset ${opset}, ${weights} weights of step ${step}, ${mb} MB\n`);
}
