/** `diffuse export`: a checkpoint's U-Net as an ONNX file (for ONNX Runtime, Node or browser). */
import { defineCommand } from './command.js';
import { CHECKPOINT, WEIGHTS } from './options.js';
import { DiffuseError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { checkpointDir, loadModelWeights } from '../train/checkpoint.js';
import { DEFAULT_OPSET, exportCheckpointToOnnx, MAX_OPSET, MIN_OPSET } from '../onnx/export-unet.js';
import { expertRange } from '../diffusion/experts.js';

/** The file of expert k when a checkpoint of experts is exported to `out`: model.onnx -> model-expert0.onnx. */
export function expertOnnxFile(out: string, k: number): string {
  return out.replace(/(\.onnx)?$/i, (ext) => `-expert${k}${ext || '.onnx'}`);
}

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
stored in the file's metadata. A checkpoint of K expert networks (train --experts)
gives K files, one per expert (--out model.onnx: model-expert0.onnx, ...), each
with its index and the experts' timestep boundaries in its metadata.`,
  options: OPTIONS,
  async run({ values: o }) {
    if (o.checkpoint === undefined) throw new DiffuseError('export needs --checkpoint DIR (see diffuse export --help)');
    const { config, params, step } = await loadModelWeights(checkpointDir(o.checkpoint), o.weights);
    const files = exportCheckpointToOnnx(config, params, { weights: o.weights, step, opset: o.opset });
    const ex = config.experts;
    for (const [k, bytes] of files.entries()) {
      const file = ex === undefined ? o.out : expertOnnxFile(o.out, k);
      await writeFileAtomic(file, bytes);
      const which = ex === undefined ? '' : `expert ${k} of ${ex.count} (${expertRange(ex.boundaries, k)}), `;
      process.stdout.write(`wrote ${file}: ONNX opset ${o.opset}, ${which}${o.weights} weights of step ${step}, ${(bytes.length / 1e6).toFixed(2)} MB\n`);
    }
  },
});
