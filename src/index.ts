/**
 * diffuse-ts public API: one barrel.
 *
 * The math (RNG, schedules, the forward process, prediction types, samplers,
 * guidance, generation) is engine-free: import those modules directly
 * (e.g. 'diffuse-ts/dist/src/samplers/factory.js') to stay tfjs-free, as the
 * browser explorer does. The barrel also exports the engine, U-Net, trainer,
 * ONNX and evaluation parts, so importing it loads @tensorflow/tfjs.
 */
export { DiffuseError } from './errors.js';

// Randomness and schedules
export { Rng, type RngState } from './rng.js';
export { linearBetaSchedule, scaledLinearBetaSchedule, cosineBetaSchedule, sigmoidBetaSchedule, rescaleZeroTerminalSnr, betasFor, makeSchedule, scheduleFromBetas, checkTimestep, checkTime, alphaBarAt, sigmaOfAlphaBar, SCHEDULE_NAMES, MIN_T, MAX_T, MAX_BETA, ZERO_SNR_ALPHA_BAR, type Schedule, type ScheduleName, type ScheduleOptions } from './schedule.js';

// The diffusion math
export { PREDICTION_TYPES, type PredictionType, type Shape4, type ModelFn } from './diffusion/types.js';
export { type Timesteps } from './diffusion/timesteps.js';
export { toX0AndEps, toX0AndEpsAt, fromX0AndEps, convertPrediction, levelAt, levelOfSigma, checkPredictionForSchedule, type X0AndEps, type NoiseLevel } from './diffusion/prediction.js';
export { qSample, forwardStep, forwardChain, trainingTarget, makeTrainingBatch, checkShape, type ChainFrame, type TrainingBatch } from './diffusion/forward.js';
export { gaussianOracle, gaussianMixtureOracle, gaussianPosteriorMeanX0, sampleGaussianMixture, type GaussianComponent, type OracleOptions } from './diffusion/gaussian-oracle.js';
export { forwardStrip, stripSteps, type StripOptions } from './diffusion/strip.js';

// Samplers
export { clipX0, SamplerBase, type Sampler, type StepResult, type SamplerOptions, type ClipX0, type Prediction } from './samplers/types.js';
export { spacedTimesteps, timestepGrid, roundHalfEven, TIMESTEP_SPACINGS, type TimestepSpacing, type SpacingOptions } from './samplers/spacing.js';
export { interpSigma, sigmaToTimestep, karrasSigmas } from './samplers/sigmas.js';
export { DdpmSampler, type DdpmOptions } from './samplers/ddpm.js';
export { DdimSampler, ddimMove, DDIM_PREV_TIMESTEPS, type DdimOptions, type DdimPrevTimestep } from './samplers/ddim.js';
export { DpmSolverSampler, KARRAS_TIMESTEPS, type DpmSolverOptions, type KarrasTimesteps } from './samplers/dpm-solver.js';
export { SigmaSpaceSampler, toVarianceExploding, toVariancePreserving, type SigmaSpaceOptions } from './samplers/sigma-space.js';
export { EulerSampler, type EulerOptions } from './samplers/euler.js';
export { HeunSampler, type HeunOptions } from './samplers/heun.js';
export { sample, ddimInvert, type SampleOptions, type StepInfo } from './samplers/loop.js';
export { samplerFromDiffusersConfig, parseDiffusersJson, DIFFUSERS_SCHEDULER_CLASS, type DiffusersSampling, type DiffusersSchedulerClass } from './interop/diffusers-scheduler.js';
// diffusers' UNet2DModel / UNet2DConditionModel <-> our U-Net (engine-free), and their folders (docs/diffusers.md)
export { unetConfigFromDiffusers, diffusersConfigFromUNet, weightsFromDiffusers, weightsToDiffusers, diffusersParamLinks, DIFFUSERS_UNET_CLASSES, DEFAULT_CONTEXT_LENGTH, type DiffusersUNetClass, type DiffusersUNetOptions, type ParamLink } from './interop/diffusers-unet.js';
export { findDiffusersFolder, loadDiffusersUNet, loadDiffusersPipeline, diffusersPipelineFiles, diffusersSchedulerConfig, saveDiffusersPipeline, type DiffusersFolder, type DiffusersPipelineOptions, type LoadedDiffusersPipeline, type LoadedDiffusersUNet } from './interop/diffusers-folder.js';
export { createSampler, checkSamplerSettings, SAMPLER_NAMES, type SamplerName, type CreateSamplerOptions, type SamplerSettings } from './samplers/factory.js';

// Guidance and generation
export { classifierFreeGuidance, type GuidanceOptions } from './guidance/cfg.js';
export { resolveClass } from './guidance/labels.js';
export { classCondition, promptCondition, nullCondition, classPrompt, classCount, resolveClassFor, type Condition } from './guidance/condition.js';

// Text prompts (engine-free)
export { words, buildVocab, tokenize, detokenize, closestWords, editDistance } from './text/tokenizer.js';
export { defaultCaptions, allCaptions, sampleCaption, withTextConditioning, withCaptionConditioning, textEncoderFor, CAPTION_TEMPLATES, DEFAULT_TEXT_DIM } from './text/captions.js';
export { generate, frameSteps, startNoise, type GenerateOptions, type GenerateResult, type GenerateStep, type ReverseFrame } from './generate.js';
export { loadPipeline, shippedModelDir, tfjsModelFn, generateWith, defaultSteps, ENGINE_NAMES, type SampleRequest, type Pipeline, type PipelineOptions, type EngineName } from './pipeline.js';
export { loadSamplingModel, type SamplingModel } from './pipeline.js';

// Images
export { readImage, decodeImage, detectFormat, encodePng, writePng, toFloat, toBytes, toFloatImage, toByteImage, toGrayscale, toRgb, centerCropSquare, resizeBilinear, imageGrid, checkImage, type ImageU8, type ImageF32, type Channels, type GridOptions, type ImageFormat } from './io/image.js';
export { writeGif, encodeGif, type GifOptions } from './io/gif.js';
export { writeFileAtomic } from './io/atomic.js';

// Data
export { type Dataset, type DatasetSpec, type DatasetName, type LoadedDataset, DATASET_NAMES, loadDataset, loadMnist, MNIST_LABEL_NAMES, loadFashionMnist, FASHION_MNIST_DIR, FASHION_MNIST_LABEL_NAMES, loadImageFolder, type FolderDataset, type FolderOptions, readIdx, parseIdx, type IdxArray, BatchSampler, type SamplerState, epochPermutation, gatherBatch, balancedIndices, evenlySpacedIndices, limitDataset, resizeDataset, convertChannels, subsetDataset, resizeAreaFloat, datasetCaptions, folderCaptions, readFolderCaptions, METADATA_FILE, type FolderCaptions,
  loadEmoji, emojiCatalog, emojiCaptions, emojiSplit, fnv1a32, EMOJI_STYLES, EMOJI_SIZE, EMOJI_HELD_OUT_MODULUS, SKIN_TONES, type EmojiDataset, type EmojiImage, type EmojiOptions, type EmojiStyle, type EmojiSplit } from './data/index.js';

// Config, checkpoints, training
export { type DiffuseConfig, type DiffusionConfig, type DataConfig, type TrainConfig, type DeepPartial, defaultConfig, parseConfig, stringifyConfig } from './config.js';
export { encodeSafetensors, decodeSafetensors, readSafetensors, writeSafetensors, writeSafetensorsSync, type SafetensorsFile, type SafeDtype } from './io/safetensors.js';
export type { F32Tensor, Weights } from './tensor.js';
export { saveCheckpoint, loadCheckpoint, checkpointDir, loadModelWeights, modelParamShapes, type Checkpoint, type TrainingState, type LoadOptions, CHECKPOINT_FILES, LOSS_HISTORY_TAIL } from './train/checkpoint.js';
export { ProgressBar, type ProgressOptions, type ProgressStream, Ema, formatDuration, formatLoss } from './io/progress.js';
export { JsonlLog, readLog, type LogRecord } from './train/log.js';
export { train, learningRate, emaDecayAt, datasetFor, type TrainOptions, type TrainResult } from './train/train.js';

// The network (engine-free config; tfjs model)
export { defaultUNetConfig, validateUNetConfig, levelResolutions, conditionLength, PAD_TOKEN, type UNetConfig, type TextEncoderConfig } from './model/config.js';
export { UNET_OPTIONAL_FIELDS, type CrossAttentionConfig } from './model/config.js';

// Network descriptions (engine-free; docs/networks.md): a network is written once over a GraphBuilder,
// and its parameters, tfjs forward (runGraph) and ONNX graph (exportGraphToOnnx) follow from it.
export { GraphBuilder, BATCH, sinusoidalFrequencies, samePads, convPads, shapeSize, nodeInputs, nodeOutputs, type Graph, type Node, type Op, type Value, type DType, type InputDecl, type GraphOutput, type ParamSpec, type InitKind, type Padding, type SinusoidalOptions } from './net/graph.js';
export * as blocks from './net/blocks.js';
export { networkGraph, networkParamSpecs, type NetworkDef } from './net/network.js';
export { initParam, initParams, paramCount, checkParams, paramLayout, type ParamLayout, type ParamSource, type CheckOptions } from './net/params.js';
export { unetDescription, unetGraph, unetNetwork } from './model/unet-description.js';
export { registeredNetwork, isRegisteredNetwork } from './model/networks.js';
export { textEncoder } from './text/encoder.js';
export { trainGraph, LOSS_KINDS, type LossSpec, type TrainGraph } from './train/objective.js';

// ONNX export and ONNX Runtime (the fast sampling path)
export { exportUNetToOnnx, hwioToOihw, DEFAULT_OPSET, ONNX_UNET_CONFIG_KEY, type OnnxExportOptions } from './onnx/export-unet.js';
export { exportGraphToOnnx, type GraphExportOptions } from './onnx/export-graph.js';
export { createOrtModelFn, ortAvailable, type OrtModelFn, type OrtModelOptions } from './onnx/runner.js';
export { createOrtGraphSession, contextModelFn, type OrtGraphSession, type GraphFeed } from './onnx/graph-session.js';
export { OnnxGraph, attr } from './onnx/graph.js';
export { encodeOnnxModel, decodeOnnxModel, readOnnxMetadata } from './onnx/proto.js';

// Sample quality (metrics, evaluate and splits don't load tfjs; classifier does)
export { frechetDistance, frechetDistanceGaussians, kernelInceptionDistance, classHistogram, meanAndCovariance, symmetricEigen, sqrtPsd, type FeatureSet, type KidOptions, type KidResult, type ClassHistogram } from './eval/metrics.js';
export { evaluateSamples, realFloor, referenceFeatures, fitToClassifier, classAgreement, type ClassAgreement, type SampleScores, type ImageBatch, type ReferenceFeatures, type EvaluateOptions, type RealFloorOptions } from './eval/evaluate.js';
export { loadEvalSplits, splitHeldOut, EVAL_DATASETS, MNIST_HELD_OUT_SEED, type EvalSplits, type EvalDatasetName } from './eval/splits.js';
export { createClassifier, buildClassifier, loadClassifier, saveClassifier, trainClassifier, classifierAccuracy, defaultClassifierConfig, validateClassifierConfig, classifierParamCount, CLASSIFIER_FILES, type Classifier, type ClassifierConfig, type ClassPrediction, type TrainClassifierOptions, type TrainedClassifier, type ClassifierProgress, type ClassifierTrainingInfo } from './eval/classifier.js';

// The engine, the U-Net and the trainer core (these load @tensorflow/tfjs)
export { initEngine, parseBackendName, tfjsNodeAvailable, BACKEND_NAMES, type BackendName, type Engine } from './engine/backend.js';
export { createUNet, buildUNet, describeUNet, unetParamCount, unetParamSpecs, type UNet, type UNetApplyOptions } from './model/unet.js';
export { modelFnFromUNet, loadUNetFromState, type ModelFnOptions } from './model/runner.js';
export { runGraph, buildTfjsNetwork, type TfjsNetwork, type RunOptions, type TensorInputs } from './net/tfjs.js';
export { createTrainer, createNetworkTrainer, replicaParams, DEFAULT_MICRO_BATCH, type Trainer, type TrainerState, type TrainBatch, type TrainerOptions, type StepHyper, type TrainTask, type NamedBatch } from './train/trainer.js';

// The explorer (diffuse serve)
export { startExplorerServer, type ExplorerServer, type ExplorerServerOptions } from './web/server.js';
