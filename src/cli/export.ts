/** `diffuse export`: a checkpoint's U-Net, or its autoencoder's decoder or encoder, as an ONNX file (for ONNX Runtime, Node or browser), or its U-Net as a diffusers pipeline folder. */
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
import { checkOutputDir, checkOutputFile } from '../io/files.js';
import { diffusersPipelineFiles, MODEL_INDEX, saveDiffusersPipeline } from '../interop/diffusers-folder.js';
import { expertRange } from '../diffusion/experts.js';

/** The file of expert k when a checkpoint of experts is exported to `out`: model.onnx -> model-expert0.onnx. */
export function expertOnnxFile(out: string, k: number): string {
  return out.replace(/(\.onnx)?$/i, (ext) => `-expert${k}${ext || '.onnx'}`);
}

export const OPTIONS = {
  checkpoint: { ...CHECKPOINT, help: 'run or checkpoint folder (required)' },
  weights: WEIGHTS,
  part: { type: 'choice', choices: ['unet', ...AUTOENCODER_PARTS], arg: 'P', help: "which network: the U-Net, or a latent model's (or an autoencoder checkpoint's) decoder or encoder (ONNX only)", defaultText: 'unet; decoder for an autoencoder checkpoint' },
  format: { type: 'choice', choices: ['onnx', 'diffusers'], default: 'onnx', arg: 'F', help: 'output format: an ONNX file, or a diffusers pipeline folder (docs/diffusers.md)' },
  out: { type: 'string', arg: 'PATH', help: 'output: an .onnx file, or the diffusers folder', defaultText: 'model.onnx; diffusers: required' },
  opset: { type: 'int', min: MIN_OPSET, max: MAX_OPSET, default: DEFAULT_OPSET, arg: 'N', help: 'ONNX opset' },
  overwrite: { type: 'flag', help: 'diffusers: replace the export already in --out (its other files are kept)' },
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
with its index and the experts' timestep boundaries in its metadata.
--part decoder: the autoencoder's decoder of a latent model (or of a
train-autoencoder checkpoint): input z float32 [N,s,s,L] (latents: a sampler's
output divided by the scaling factor in the metadata), output image float32
[N,S,S,C] in [-1, 1]; --part encoder: x -> mean, logvar.
--format diffusers writes a diffusers pipeline folder instead (model_index.json,
unet/ as UNet2DModel with config.json and diffusion_pytorch_model.safetensors,
scheduler/ as DDPMScheduler with the training schedule), which diffusers loads
with DDPMPipeline.from_pretrained(DIR) (or DDIMPipeline); pixel models only.`,
  options: OPTIONS,
  async run({ values: o }) {
    if (o.checkpoint === undefined) throw new DiffuseError('export needs --checkpoint DIR (see diffuse export --help)');
    const diffusers = o.format === 'diffusers';
    const out = o.out ?? 'model.onnx';
    // the output first, before any loading
    if (diffusers) {
      if (o.part !== undefined && o.part !== 'unet') throw new DiffuseError(`--part ${o.part} is for --format onnx (a diffusers pipeline folder holds the U-Net)`);
      if (o.out === undefined) throw new DiffuseError('--format diffusers needs --out DIR (the pipeline folder to write)');
      checkOutputDir(out, '--out');
    } else {
      if (o.overwrite) throw new DiffuseError('--overwrite is for --format diffusers (an ONNX file is replaced atomically)');
      checkOutputFile(out, '--out', ['onnx']);
    }
    const dir = modelCheckpointDir(o.checkpoint);
    if (checkpointKind(dir) === 'autoencoder') {
      if (diffusers) throw new DiffuseError(`${o.checkpoint} is an autoencoder checkpoint: --format diffusers exports a diffusion model's U-Net (give --format onnx --part decoder or encoder)`);
      if (o.part === 'unet') throw new DiffuseError(`${o.checkpoint} is an autoencoder checkpoint: it has no U-Net (give --part decoder or encoder)`);
      const ae = await loadModelWeightsWith(dir, AUTOENCODER_CODEC, o.weights);
      const st = ae.config.stats;
      return writeAutoencoderPart(o.part ?? 'decoder', ae.config.model, ae.params, ae.step, {
        'diffuse.weights': o.weights,
        ...(st !== undefined ? { 'diffuse.scaling_factor': String(st.scalingFactor) } : {}),
      }, o.opset, out);
    }
    const { config, params, step, parts } = await loadModelWeights(dir, o.weights);
    if (diffusers) {
      const files = diffusersPipelineFiles(config, params);
      await saveDiffusersPipeline(out, files, { overwrite: o.overwrite });
      const bytes = Object.values(files).reduce((s, f) => s + (typeof f === 'string' ? f.length : f.length), 0);
      process.stdout.write(`wrote ${out}: diffusers ${MODEL_INDEX in files ? 'DDPMPipeline' : 'U-Net and scheduler'} (${Object.keys(files).sort().join(', ')}), ${o.weights} weights of step ${step}, ${(bytes / 1e6).toFixed(2)} MB\n`);
      return;
    }
    const part = o.part ?? 'unet';
    if (part !== 'unet' && config.latent === undefined) throw new DiffuseError(`${o.checkpoint} is not a latent model: it has no autoencoder (--part ${part} needs one trained with diffuse train --latent)`);
    const files = exportCheckpointNetwork(config, { params, autoencoder: parts.autoencoder }, part, { weights: o.weights, step, opset: o.opset });
    // one file per expert for a U-Net of experts (latent models have none: config validation)
    const ex = part === 'unet' ? config.experts : undefined;
    for (const [k, bytes] of files.entries()) {
      const file = ex === undefined ? out : expertOnnxFile(out, k);
      await writeFileAtomic(file, bytes);
      const what = part === 'unet' ? '' : `the autoencoder's ${part}, `;
      const which = ex === undefined ? '' : `expert ${k} of ${ex.count} (${expertRange(ex.boundaries, k)}), `;
      process.stdout.write(`wrote ${file}: ${what}ONNX opset ${o.opset}, ${which}${o.weights} weights of step ${step}, ${(bytes.length / 1e6).toFixed(2)} MB\n`);
    }
  },
});

async function writeAutoencoderPart(part: AutoencoderPart, config: AutoencoderConfig, weights: Weights, step: number, metadata: Record<string, string>, opset: number, out: string): Promise<void> {
  const bytes = exportAutoencoderToOnnx(config, weights, part, { opset, metadata: { ...metadata, 'diffuse.step': String(step) } });
  await writeFileAtomic(out, bytes);
  process.stdout.write(`wrote ${out}: the autoencoder's ${part}, ONNX opset ${opset}, weights of step ${step}, ${(bytes.length / 1e6).toFixed(2)} MB\n`);
}
