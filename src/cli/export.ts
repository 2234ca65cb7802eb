/** `diffuse export`: a checkpoint's U-Net as an ONNX file (for ONNX Runtime, Node or browser). */
import { defineCommand } from './command.js';
import { CHECKPOINT, WEIGHTS } from './options.js';
import { DiffuseError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { loadModelWeights } from '../train/checkpoint.js';
import { modelCheckpointDir } from '../pipeline.js';
import { DEFAULT_OPSET, exportUNetToOnnx, MAX_OPSET, MIN_OPSET } from '../onnx/export-unet.js';

export const OPTIONS = {
  checkpoint: { ...CHECKPOINT, help: 'run or checkpoint folder (required)' },
  weights: WEIGHTS,
  format: { type: 'choice', choices: ['onnx'], default: 'onnx', arg: 'F', help: 'output format' },
  out: { type: 'out-file', formats: ['onnx'], default: 'model.onnx', arg: 'FILE', help: 'output file' },
  opset: { type: 'int', min: MIN_OPSET, max: MAX_OPSET, default: DEFAULT_OPSET, arg: 'N', help: 'ONNX opset' },
} as const;

export const command = defineCommand({
  name: 'export',
  usage: '--checkpoint DIR [options]',
  description: `Write the checkpoint's U-Net as an ONNX model: inputs x float32 [N,H,W,C] (NHWC),
t float32 [N] (timestep index), classes int64 [N] (class-conditional models only;
numClasses = no class) or tokens int64 [N,L] (text models only: prompt token ids,
0 = pad; the vocabulary is in the metadata); output out float32 [N,H,W,outC].
The batch size is dynamic.
The model config and the diffusion settings (schedule, timesteps, prediction) are
stored in the file's metadata.`,
  options: OPTIONS,
  async run({ values: o }) {
    if (o.checkpoint === undefined) throw new DiffuseError('export needs --checkpoint DIR (see diffuse export --help)');
    const { config, params, step } = await loadModelWeights(modelCheckpointDir(o.checkpoint), o.weights);
    const bytes = exportUNetToOnnx(config.model, params, {
      opset: o.opset,
      metadata: {
        'diffuse.schedule': config.diffusion.schedule,
        'diffuse.timesteps': String(config.diffusion.timesteps),
        'diffuse.prediction': config.diffusion.prediction,
        'diffuse.weights': o.weights,
        'diffuse.step': String(step),
        ...(config.data.labelNames !== undefined ? { 'diffuse.label_names': JSON.stringify(config.data.labelNames) } : {}),
      },
    });
    await writeFileAtomic(o.out, bytes);
    process.stdout.write(`wrote ${o.out}: ONNX opset ${o.opset}, ${o.weights} weights of step ${step}, ${(bytes.length / 1e6).toFixed(2)} MB\n`);
  },
});
