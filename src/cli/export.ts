/** `diffuse export`: a checkpoint's U-Net as an ONNX file (for ONNX Runtime, Node or browser), or as a diffusers pipeline folder. */
import { defineCommand } from './command.js';
import { CHECKPOINT, WEIGHTS } from './options.js';
import { DiffuseError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { checkpointDir, loadModelWeights } from '../train/checkpoint.js';
import { DEFAULT_OPSET, exportUNetToOnnx, MAX_OPSET, MIN_OPSET } from '../onnx/export-unet.js';
import { checkOutputDir, checkOutputFile } from '../io/files.js';
import { diffusersPipelineFiles, MODEL_INDEX, saveDiffusersPipeline } from '../interop/diffusers-folder.js';

export const OPTIONS = {
  checkpoint: { ...CHECKPOINT, help: 'run or checkpoint folder (required)' },
  weights: WEIGHTS,
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
stored in the file's metadata.
--format diffusers writes a diffusers pipeline folder instead (model_index.json,
unet/ as UNet2DModel with config.json and diffusion_pytorch_model.safetensors,
scheduler/ as DDPMScheduler with the training schedule), which diffusers loads
with DDPMPipeline.from_pretrained(DIR) (or DDIMPipeline).`,
  options: OPTIONS,
  async run({ values: o }) {
    if (o.checkpoint === undefined) throw new DiffuseError('export needs --checkpoint DIR (see diffuse export --help)');
    if (o.format === 'diffusers') {
      if (o.out === undefined) throw new DiffuseError('--format diffusers needs --out DIR (the pipeline folder to write)');
      checkOutputDir(o.out, '--out');
      const { config, params, step } = await loadModelWeights(checkpointDir(o.checkpoint), o.weights);
      const files = diffusersPipelineFiles(config, params);
      await saveDiffusersPipeline(o.out, files, { overwrite: o.overwrite });
      const bytes = Object.values(files).reduce((s, f) => s + (typeof f === 'string' ? f.length : f.length), 0);
      process.stdout.write(`wrote ${o.out}: diffusers ${MODEL_INDEX in files ? 'DDPMPipeline' : 'U-Net and scheduler'} (${Object.keys(files).sort().join(', ')}), ${o.weights} weights of step ${step}, ${(bytes / 1e6).toFixed(2)} MB\n`);
      return;
    }
    if (o.overwrite) throw new DiffuseError('--overwrite is for --format diffusers (an ONNX file is replaced atomically)');
    const out = o.out ?? 'model.onnx';
    checkOutputFile(out, '--out', ['onnx']);
    const { config, params, step } = await loadModelWeights(checkpointDir(o.checkpoint), o.weights);
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
    await writeFileAtomic(out, bytes);
    process.stdout.write(`wrote ${out}: ONNX opset ${o.opset}, ${o.weights} weights of step ${step}, ${(bytes.length / 1e6).toFixed(2)} MB\n`);
  },
});
