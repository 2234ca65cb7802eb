/**
 * What a conditional model is asked for, as data: one condition row per image
 * (a class index, or a prompt's token ids) plus the "no condition" row the
 * model was trained with. Built from class indices, class names or prompts
 * against a checkpoint's own vocabulary (labelNames, model.text).
 */
import { DiffuseError } from '../errors.js';
import type { DiffuseConfig } from '../config.js';
import { conditionLength, type UNetConfig } from '../model/config.js';
import { tokenize } from '../text/tokenizer.js';
import { resolveClass } from './labels.js';

export interface Condition {
  /** Row-major [n, L]: one row per image. */
  readonly cond: Int32Array;
  /** The unconditional row (length L). */
  readonly nullCond: Int32Array;
  /** Classifier-free guidance weight w (0 = the plain conditional model). */
  readonly guidance: number;
}

/** The "no condition" row of a model: [numClasses] for class models, L pad tokens for text models. */
export function nullCondition(model: UNetConfig): Int32Array {
  if (model.text !== undefined) return new Int32Array(model.text.maxTokens);
  if (model.numClasses > 0) return Int32Array.of(model.numClasses);
  throw new DiffuseError('this model is unconditional: it takes no class or prompt');
}

function checkGuidance(w: number): void {
  if (!(Number.isFinite(w) && w >= 0)) throw new DiffuseError(`guidance weight must be a number ≥ 0, got ${w}`);
}

/** The canonical prompt of class k for a text model (the class's first phrase). */
export function classPrompt(config: DiffuseConfig, k: number): string {
  const caps = config.data.captions;
  if (caps === undefined) throw new DiffuseError('this model has no captions (it is not text-conditioned)');
  const row = caps[k];
  if (row === undefined) throw new DiffuseError(`class ${k} out of range: this model knows classes 0..${caps.length - 1}`);
  return row[0]!;
}

/** Number of classes a conditional model knows (label names for text models). */
export function classCount(config: DiffuseConfig): number {
  if (config.model.text !== undefined) return config.data.captions?.length ?? 0;
  return config.model.numClasses;
}

/**
 * One class per image (index, or numClasses / -1 = no class). Works for class
 * models (the index) and text models (the class's canonical prompt).
 */
export function classCondition(config: DiffuseConfig, classes: ArrayLike<number>, guidance: number): Condition {
  checkGuidance(guidance);
  const m = config.model;
  const nullCond = nullCondition(m);
  const K = classCount(config);
  const L = conditionLength(m);
  const cond = new Int32Array(classes.length * L);
  const promptRows = new Map<number, Int32Array>();
  for (let i = 0; i < classes.length; i++) {
    const k = classes[i]!;
    if (!Number.isInteger(k) || k < -1 || k > K) throw new DiffuseError(`class index ${k} out of range 0..${K - 1} (${K} or -1 = no class)`);
    if (k === K || k === -1) {
      cond.set(nullCond, i * L);
    } else if (m.text !== undefined) {
      let row = promptRows.get(k);
      if (row === undefined) promptRows.set(k, (row = tokenize(classPrompt(config, k), m.text)));
      cond.set(row, i * L);
    } else {
      cond[i] = k;
    }
  }
  return { cond, nullCond, guidance };
}

/**
 * One prompt per image ('' = no prompt). Text models tokenize it; class models
 * accept a class name or synonym ("7", "seven", "ankle boot").
 */
export function promptCondition(config: DiffuseConfig, prompts: readonly string[], guidance: number): Condition {
  checkGuidance(guidance);
  const m = config.model;
  if (m.text === undefined) {
    if (m.numClasses === 0) throw new DiffuseError('this model is unconditional: it takes no prompt');
    const k = prompts.map((p) => (p.trim() === '' ? m.numClasses : resolveClass(p, config.data.labelNames, m.numClasses)));
    return classCondition(config, k, guidance);
  }
  const L = m.text.maxTokens;
  const cond = new Int32Array(prompts.length * L);
  const cache = new Map<string, Int32Array>();
  prompts.forEach((p, i) => {
    let row = cache.get(p);
    if (row === undefined) cache.set(p, (row = tokenize(p, m.text!)));
    cond.set(row, i * L);
  });
  return { cond, nullCond: nullCondition(m), guidance };
}

/** A class query ("7", "seven", "Ankle boot") -> class index, for class and text models alike. */
export function resolveClassFor(config: DiffuseConfig, query: string): number {
  const K = classCount(config);
  if (config.model.text !== undefined) {
    const caps = config.data.captions ?? [];
    const q = query.trim().toLowerCase();
    const hit = caps.findIndex((row) => row.some((p) => p.toLowerCase() === q));
    if (hit >= 0) return hit;
  }
  return resolveClass(query, config.data.labelNames, K);
}
