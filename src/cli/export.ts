/** `diffuse export`: a checkpoint's U-Net, or its autoencoder's decoder or encoder, as an ONNX file (for ONNX Runtime, Node or browser). */
import { defineCommand } from './command.js';
import { CHECKPOINT, WEIGHTS } from './options.js';
import { DiffuseError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { AUTOENCODER_CODEC, checkpointKind, loadModelWeights, loadModelWeightsWith } from '../train/checkpoint.js';
import { modelCheckpointDir } from '../pipeline.js';
import { DEFAULT_OPSET, MAX_OPSET, MIN_OPSET } from '../onnx/export-unet.js';
import { exportCheckpointNetwork } from '../onnx/export-checkpoint.js';
import { AUTOENCODER_PARTS, exportAutoencoderToOnnx, type AutoencoderPart } from '../onnx/export-autoencoder.js';
import type { AutoencoderConfig } from '../model/autoencoder-config.js';
import type { Weights } from '../tensor.js';

export const OPTIONS = {
  checkpoint: { ...CHECKPOINT, help: 'run or checkpoint folder (required)' },
  weights: WEIGHTS,
  part: { type: 'choice', choices: ['unet', ...AUTOENCODER_PARTS], arg: 'P', help: "which network: the U-Net, or a latent model's (or an autoencoder checkpoint's) decoder or encoder", defaultText: 'unet; decoder for an autoencoder checkpoint' },
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
stored in the file's metadata.
--part decoder: the autoencoder's decoder of a latent model (or of a
train-autoencoder checkpoint): input z float32 [N,s,s,L] (latents: a sampler's
output divided by the scaling factor in the metadata), output image float32
[N,S,S,C] in [-1, 1]; --part encoder: x -> mean, logvar.`,
  options: OPTIONS,
  async run({ values: o }) {
    if (o.checkpoint === undefined) throw new DiffuseError('export needs --checkpoint DIR (see diffuse export --help)');
    const dir = modelCheckpointDir(o.checkpoint);
    if (checkpointKind(dir) === 'autoencoder') {
      if (o.part === 'unet') throw new DiffuseError(`${o.checkpoint} is an autoencoder checkpoint: it has no U-Net (give --part decoder or encoder)`);
      const ae = await loadModelWeightsWith(dir, AUTOENCODER_CODEC, o.weights);
      const st = ae.config.stats;
      return writeAutoencoderPart(o.part ?? 'decoder', ae.config.model, ae.params, ae.step, {
        'diffuse.weights': o.weights,
        ...(st !== undefined ? { 'diffuse.scaling_factor': String(st.scalingFactor) } : {}),
      }, o.opset, o.out);
    }
    const { config, params, step, parts } = await loadModelWeights(dir, o.weights);
    const part = o.part ?? 'unet';
    if (part !== 'unet' && config.latent === undefined) throw new DiffuseError(`${o.checkpoint} is not a latent model: it has no autoencoder (--part ${part} needs one trained with diffuse train --latent)`);
    const bytes = exportCheckpointNetwork(config, { params, autoencoder: parts.autoencoder }, part, { step, weights: o.weights, opset: o.opset });
    await writeFileAtomic(o.out, bytes);
    const what = part === 'unet' ? '' : ` the autoencoder's ${part},`;
    process.stdout.write(`wrote ${o.out}:${what} ONNX opset ${o.opset}, ${o.weights} weights of step ${step}, ${(bytes.length / 1e6).toFixed(2)} MB\n`);
  },
});

async function writeAutoencoderPart(part: AutoencoderPart, config: AutoencoderConfig, weights: Weights, step: number, metadata: Record<string, string>, opset: number, out: string): Promise<void> {
  const bytes = exportAutoencoderToOnnx(config, weights, part, { opset, metadata: { ...metadata, 'diffuse.step': String(step) } });
  await writeFileAtomic(out, bytes);
  process.stdout.write(`wrote ${out}: the autoencoder's ${part}, ONNX opset ${opset}, weights of step ${step}, ${(bytes.length / 1e6).toFixed(2)} MB\n`);
}
