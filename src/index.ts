/**
 * diffuse-ts for Node (`import … from 'diffuse-ts'`): everything in the
 * engine-free core (core.ts, also 'diffuse-ts/core') plus what needs Node or
 * an engine: loading shipped models and checkpoints, image and model files,
 * data sets, training, the tfjs engine and U-Net, ONNX Runtime (Node),
 * evaluation and the explorer's server. Importing it loads
 * @tensorflow/tfjs-core; for the browser use 'diffuse-ts/browser'.
 * A new Node-only module is exported here, once; an engine-free one in core.ts.
 */
export * from './core.js';

// Shipped models and checkpoints, ready to generate
export { loadPipeline, createPipeline, loadSamplingModel, tfjsModelFn, onnxModelFn, ENGINE_NAMES, type Pipeline, type PipelineOptions, type EngineName, type LatentPipeline, type ModelPipeline, type SamplingModel } from './pipeline.js';
export { shippedModels, shippedModelDir, resolveModelDir, packageRoot, SHIPPED_MODELS_DIR } from './shipped.js';

// Files: images, GIFs, safetensors, atomic writes
export { readImage, decodeImage, detectFormat, encodePng, encodeJpeg, writePng, writeImage, type ImageFormat } from './io/image.js';
export { writeGif, encodeGif, type GifOptions } from './io/gif.js';
export { writeFileAtomic } from './io/atomic.js';
export { encodeSafetensors, decodeSafetensors, readSafetensors, writeSafetensors, writeSafetensorsSync, type SafetensorsFile, type SafeDtype } from './io/safetensors.js';
// diffusers pipeline and unet/ folders: reading them (pipeline.ts loads them for sampling) and writing ours (docs/diffusers.md)
export { findDiffusersFolder, loadDiffusersUNet, loadDiffusersPipeline, diffusersPipelineFiles, diffusersSchedulerConfig, saveDiffusersPipeline, type DiffusersFolder, type DiffusersPipelineOptions, type LoadedDiffusersPipeline, type LoadedDiffusersUNet } from './interop/diffusers-folder.js';

// Data sets
export { type Dataset, type DatasetSpec, type DatasetName, type LoadedDataset, DATASET_NAMES, loadDataset, loadMnist, MNIST_LABEL_NAMES, loadFashionMnist, FASHION_MNIST_DIR, FASHION_MNIST_LABEL_NAMES, loadImageFolder, type FolderDataset, type FolderOptions, readIdx, parseIdx, type IdxArray, BatchSampler, type SamplerState, epochPermutation, gatherBatch, groupMembers, parseSamplerState, samplingGroups, balancedIndices, evenlySpacedIndices, limitDataset, resizeDataset, convertChannels, subsetDataset, datasetCaptions, folderCaptions, readFolderCaptions, METADATA_FILE, type FolderCaptions,
  loadEmoji, emojiCatalog, emojiCaptions, emojiSplit, fnv1a32, EMOJI_STYLES, EMOJI_SIZE, EMOJI_HELD_OUT_MODULUS, EMOJI_ALWAYS_TRAINED, SKIN_TONES, type EmojiDataset, type EmojiImage, type EmojiOptions, type EmojiStyle, type EmojiSplit } from './data/index.js';

// Training
export { saveCheckpoint, loadCheckpoint, checkpointDir, loadModelWeights, modelParamShapes, type Checkpoint, type TrainingState, type LoadOptions, CHECKPOINT_FILES, LOSS_HISTORY_TAIL,
  saveCheckpointWith, loadCheckpointWith, loadModelWeightsWith, checkpointKind, DIFFUSION_CODEC, AUTOENCODER_CODEC, CHECKPOINT_PARTS, type ConfigCodec, type CheckpointPart, type ModelWeights } from './train/checkpoint.js';
export { ProgressBar, type ProgressOptions, type ProgressStream, Ema, formatDuration, formatLoss } from './io/progress.js';
export { JsonlLog, readLog, type LogRecord } from './train/log.js';
export { train, learningRate, emaDecayAt, datasetFor, LATENT_CACHE_FILE, type TrainOptions, type TrainResult, type SplitFrom, type InitFrom } from './train/train.js';
export { createRunTrainer, splitSharedState, type RunTrainer, type ExpertStep } from './train/experts-trainer.js';
export { runTraining, existingRun, RESUMABLE_SETTINGS, type Stage, type PreparedStage, type StageContext, type RunConfig, type RunStart, type RunOptions as TrainingRunOptions, type RunResult, type ResumableSettings } from './train/run.js';

// Latent diffusion (docs/latent.md): the autoencoder's training, engines and statistics, the latent stage
export { trainAutoencoder, loadAutoencoder, latentConfigOf, HELDOUT_IMAGES, type AutoencoderTrainOptions, type AutoencoderTrainResult, type LoadedAutoencoder } from './latent/autoencoder.js';
export { createAutoencoderRunner, graphWeights, type AutoencoderRunner, type AutoencoderRunnerOptions, type AutoencoderEngine } from './latent/runner.js';
export { latentStatistics, reconstruct, psnrPerImage, meanPsnr, meanStd, posteriorSample, STATS_IMAGES, STATS_SEED, type StatsOptions } from './latent/stats.js';
export { exportAutoencoderToOnnx, AUTOENCODER_PARTS, ONNX_AUTOENCODER_CONFIG_KEY, type AutoencoderPart } from './onnx/export-autoencoder.js';
export { encodeDataset, latentBatch, readLatentCache, writeLatentCache, weightsFingerprint, type LatentData } from './latent/space.js';

// ONNX Runtime (Node; the fast sampling path)
export { createOrtModelFn, openOrtSession, ortAvailable, type OrtModelFn, type OrtModelOptions, type OrtSession } from './onnx/runner.js';
export { createOrtGraphSession, contextModelFn, type OrtGraphSession, type GraphFeed } from './onnx/graph-session.js';

// Sample quality (evaluate and splits don't load tfjs; the classifier does; prompts loads the pipeline; metrics are in core)
export { evaluateSamples, realFloor, referenceFeatures, fitToClassifier, classAgreement, floorIndices, trainReferenceIndices, type ClassAgreement, type SampleScores, type ImageBatch, type ReferenceFeatures, type EvaluateOptions, type RealFloorOptions } from './eval/evaluate.js';
export { loadEvalSplits, loadEmojiEvalSplits, emojiClassifierValidation, emojiGroups, splitHeldOut, EVAL_DATASETS, MNIST_HELD_OUT_SEED, EMOJI_EVAL_SIZE, type EvalSplits, type EmojiEvalSplits, type EvalDatasetName } from './eval/splits.js';
export { classifierRecipe, type ClassifierRecipe } from './eval/recipes.js';
export { promptAgreement, pipelineImages, promptReadable, floorPrompts, type ImagesFromPrompts, type PromptImages, type PromptRequest, type PromptAgreement, type PromptAgreementOptions, type PipelineImagesOptions } from './eval/prompts.js';
export { emojiPromptRequests, evalPrompts, type EmojiPromptRequest, type EmojiPromptOptions } from './eval/emoji-prompts.js';
export { createClassifier, buildClassifier, loadClassifier, saveClassifier, trainClassifier, classifierAccuracy, classifierAccuracies, augmentBatch, DEFAULT_AUGMENT, CLASSIFIER_RESIZES, defaultClassifierConfig, validateClassifierConfig, classifierParamCount, CLASSIFIER_FILES, type Classifier, type ClassifierConfig, type ClassPrediction, type TrainClassifierOptions, type TrainedClassifier, type ClassifierProgress, type ClassifierTrainingInfo, type ClassifierAugment, type ClassifierResize, type LabelGroups } from './eval/classifier.js';

// The engine, the U-Net and the trainer core (these load @tensorflow/tfjs-core)
export { initEngine, parseBackendName, tfjsNodeAvailable, BACKEND_NAMES, type BackendName, type Engine } from './engine/backend.js';
export { createUNet, buildUNet, describeUNet, unetParamCount, unetParamSpecs, type UNet, type UNetApplyOptions } from './model/unet.js';
export { modelFnFromUNet, loadUNetFromState, type ModelFnOptions } from './model/runner.js';
export { runGraph, buildTfjsNetwork, type TfjsNetwork, type RunOptions, type TensorInputs } from './net/tfjs.js';
export { createTrainer, createNetworkTrainer, replicaParams, DEFAULT_MICRO_BATCH, type Trainer, type TrainerState, type TrainBatch, type TrainerOptions, type StepHyper, type StepResult, type TrainTask, type NamedBatch } from './train/trainer.js';

// The explorer (diffuse serve)
export { startExplorerServer, type ExplorerServer, type ExplorerServerOptions } from './web/server.js';
