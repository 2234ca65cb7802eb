/** Seeded U-Net weights for the benches (and the export tests that share their cases). */
import type { UNetConfig } from '../src/model/config.js';
import { unetParamSpecs } from '../src/model/unet-description.js';
import { initParams } from '../src/net/params.js';
import { mulberry32 } from '../src/rng.js';
import type { Weights } from '../src/tensor.js';

/** Every parameter random (norm scales around 1, biases and the zero-initialised output conv non-zero): deterministic in the seed. */
export function randomParams(model: UNetConfig, seed: number): Weights {
  const specs = unetParamSpecs(model);
  const init = initParams(specs, seed);
  const r = mulberry32(seed * 7919 + 17);
  const out: Weights = {};
  for (const s of specs) {
    let data = init.get(s.name)!;
    if (s.init === 'zeros' || s.init === 'ones') {
      const base = s.init === 'ones' ? 1 : 0;
      const fan = s.shape.length === 4 ? s.shape[0]! * s.shape[1]! * s.shape[2]! : 0;
      const scale = fan > 0 ? Math.sqrt(3 / fan) : 0.2;
      data = data.map(() => base + (r() * 2 - 1) * scale);
    }
    out[s.name] = { shape: [...s.shape], data };
  }
  return out;
}
