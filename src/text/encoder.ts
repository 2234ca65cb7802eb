/**
 * The small text encoder of prompt-conditioned models, as a description
 * (net/graph.ts): token ids [N, L] -> context [N, L, D].
 *
 *   e = tok_emb[tokens] + pos_emb                (learned tables)
 *   e = e + attention(e)                          (one self-attention layer, no norm)
 *   context = e + dense1(silu(dense0(e)))         (token-wise MLP, 2D wide)
 *
 * Parameters under `${name}.` ('text.' in the U-Net). Engine-free; the tfjs
 * forward and the ONNX graph both follow from it.
 */
import { attention, dense, embed } from '../net/blocks.js';
import type { GraphBuilder, Value } from '../net/graph.js';
import type { TextEncoderConfig } from '../model/config.js';

export type { TextEncoderConfig };

export function textEncoder(b: GraphBuilder, name: string, c: TextEncoderConfig, tokens: Value): Value {
  const d = c.dim;
  const pos = b.param(`${name}.pos_emb.table`, [c.maxTokens, d], { normal: 0.1 });
  let e = b.add(embed(b, `${name}.tok_emb`, tokens, c.vocab.length, d, 1), pos, `${name}/embed`);
  e = b.add(e, attention(b, `${name}.attn`, e), `${name}/attn_residual`);
  const m = dense(b, `${name}.mlp.dense1`, b.silu(dense(b, `${name}.mlp.dense0`, e, 2 * d), `${name}.mlp.act`), d);
  return b.add(e, m, `${name}/context`);
}
