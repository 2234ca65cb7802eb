/**
 * diffuse-ts in the browser (`import … from 'diffuse-ts/browser'`): the
 * engine-free core plus an exported U-Net on onnxruntime-web as a ModelFn
 * (WebGPU or wasm; expert networks: one session each, routed by t), and a
 * latent model's exported decoder (with the core's latentStage, what
 * generate() decodes with). Pass your own onnxruntime-web module in (an
 * optional peer dependency): `createOrtWebModelFn(ort, bytes)`,
 * `createOrtWebDecoder(ort, bytes)`. No Node built-in is
 * imported (test/package/bundle.test.ts holds it to that). The explorer page
 * (web/main.ts) imports the library through this entry.
 */
export * from './core.js';
export { createOrtWebModelFn, createOrtWebDecoder, routeOrtWebModels, webGpuAvailable, type OrtWebModelFn, type OrtWebDecoder, type OrtWebModelOptions, type OrtWebModule, type OrtWebSession, type OrtWebTensor, type WebBackend, type WebBackendChoice } from './web/ort-web-model.js';
