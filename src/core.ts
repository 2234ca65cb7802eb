/**
 * diffuse-ts, engine-free (`import … from 'diffuse-ts/core'`): the diffusion
 * math and everything a model function needs around it, with no engine
 * (tfjs, ONNX Runtime) and no Node built-in, so it bundles for the browser.
 * Randomness, schedules, the forward process, prediction types, samplers,
 * guidance and conditions, generation, the tokenizer and captions, configs,
 * network descriptions and the ONNX writer, pixel arithmetic, FID/KID math.
 * The Node entry ('diffuse-ts', index.ts) re-exports all of this; the browser
 * entry ('diffuse-ts/browser', browser.ts) adds the onnxruntime-web model.
 * A new engine-free module is exported here, once.
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
export { expertBoundaries, checkBoundaries, expertIndex, expertRange, routeByTimestep, expertBatchSizes, stratifiedTimesteps, logSnr, expertPrefix, joinExpertWeights, expertWeights, EXPERT_SPLITS, SPLIT_OPTIMIZERS, MAX_EXPERTS, type ExpertSplit, type ExpertsConfig, type ExpertsInit, type SplitOptimizer } from './diffusion/experts.js';

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
// diffusers' UNet2DModel / UNet2DConditionModel <-> our U-Net (docs/diffusers.md); their folders are read in the Node entry
export { unetConfigFromDiffusers, diffusersConfigFromUNet, weightsFromDiffusers, weightsToDiffusers, diffusersParamLinks, DIFFUSERS_UNET_CLASSES, DEFAULT_CONTEXT_LENGTH, type DiffusersUNetClass, type DiffusersUNetOptions, type ParamLink } from './interop/diffusers-unet.js';
export { createSampler, checkSamplerSettings, defaultSteps, SAMPLER_NAMES, type SamplerName, type CreateSamplerOptions, type SamplerSettings } from './samplers/factory.js';

// Guidance and generation
export { classifierFreeGuidance, type GuidanceOptions } from './guidance/cfg.js';
export { resolveClass } from './guidance/labels.js';
export { classCondition, promptCondition, nullCondition, classPrompt, classCount, resolveClassFor, type Condition } from './guidance/condition.js';
export { generate, generateWith, frameSteps, startNoise, type GenerateOptions, type GenerateResult, type GenerateStep, type ReverseFrame, type SampleRequest, type LatentStage } from './generate.js';
export { latentStage, scaledDecoder, scaledEncoder, type LatentDecoder, type LatentEncoder } from './latent/scaled.js';

// Text prompts
export { words, buildVocab, tokenize, detokenize, closestWords, editDistance } from './text/tokenizer.js';
export { defaultCaptions, allCaptions, sampleCaption, withTextConditioning, withCaptionConditioning, textEncoderFor, CAPTION_TEMPLATES, DEFAULT_TEXT_DIM } from './text/captions.js';
export { textEncoder } from './text/encoder.js';

// Configs and plain-data types
export { type DiffuseConfig, type DiffusionConfig, type DataConfig, type TrainConfig, type DeepPartial, defaultConfig, parseConfig, stringifyConfig, withExperts,
  type LatentConfig, type LatentPosterior, LATENT_POSTERIORS, SAMPLING_BALANCES, type SamplingBalance, type AutoencoderRunConfig, type LatentStats, defaultAutoencoderRunConfig, parseAutoencoderRunConfig, stringifyAutoencoderRunConfig } from './config.js';
export { defaultAutoencoderConfig, validateAutoencoderConfig, downsamplingFactor, latentShape, RECON_LOSSES, MAX_LATENT_CHANNELS, type AutoencoderConfig, type ReconLoss } from './model/autoencoder-config.js';
export { autoencoderNetwork, encoderNetwork, decoderNetwork, autoencoderDescription, encoderDescription, decoderDescription, autoencoderParamSpecs, describeAutoencoder } from './model/autoencoder-description.js';
export { defaultUNetConfig, validateUNetConfig, levelResolutions, conditionLength, PAD_TOKEN, UNET_OPTIONAL_FIELDS, type UNetConfig, type TextEncoderConfig, type CrossAttentionConfig } from './model/config.js';
export type { F32Tensor, Weights } from './tensor.js';

// Network descriptions (docs/networks.md): a network is written once over a GraphBuilder,
// and its parameters, tfjs forward (runGraph, Node entry) and ONNX graph (exportGraphToOnnx) follow from it.
export { GraphBuilder, BATCH, sinusoidalFrequencies, samePads, convPads, shapeSize, nodeInputs, nodeOutputs, type Graph, type Node, type Op, type Value, type DType, type InputDecl, type GraphOutput, type ParamSpec, type InitKind, type Padding, type SinusoidalOptions } from './net/graph.js';
export * as blocks from './net/blocks.js';
export { networkGraph, networkParamSpecs, type NetworkDef } from './net/network.js';
export { initParam, initParams, paramCount, checkParams, paramLayout, type ParamLayout, type ParamSource, type CheckOptions } from './net/params.js';
export { unetDescription, unetGraph, unetNetwork } from './model/unet-description.js';
export { registeredNetwork, isRegisteredNetwork } from './model/networks.js';
export { trainGraph, LOSS_KINDS, type LossSpec, type TrainGraph } from './train/objective.js';

// ONNX files (writing and reading the protobuf; running them is an engine's job)
export { exportUNetToOnnx, exportCheckpointToOnnx, hwioToOihw, DEFAULT_OPSET, ONNX_UNET_CONFIG_KEY, type OnnxExportOptions, type CheckpointExportInfo } from './onnx/export-unet.js';
export { exportGraphToOnnx, type GraphExportOptions } from './onnx/export-graph.js';
export { OnnxGraph, attr } from './onnx/graph.js';
export { encodeOnnxModel, decodeOnnxModel, readOnnxMetadata } from './onnx/proto.js';

// Pixels in memory (files are io/image.ts, Node entry)
export { checkImage, toFloat, toBytes, toFloatImage, toByteImage, toGrayscale, toRgb, centerCropSquare, resizeBilinear, resizeAreaFloat, imageGrid, type Channels, type ImageU8, type ImageF32, type GridOptions } from './image/pixels.js';

// Sample-quality math
export { frechetDistance, frechetDistanceGaussians, kernelInceptionDistance, classHistogram, meanAndCovariance, symmetricEigen, sqrtPsd, type FeatureSet, type KidOptions, type KidResult, type ClassHistogram } from './eval/metrics.js';
