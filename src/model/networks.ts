/**
 * The network kinds worker threads can rebuild from a (kind, config) message.
 * A new network adds its definition here once.
 * Engine-free.
 */
import { DiffuseError } from '../errors.js';
import type { NetworkDef } from '../net/network.js';
import { unetNetwork } from './unet-description.js';
import { autoencoderNetwork } from './autoencoder-description.js';

const NETWORKS = [unetNetwork, autoencoderNetwork] as const;

/**
 * The registered definition of a kind (DiffuseError when unknown). Its config
 * arrives as data (a worker message): the definition's own validate checks it.
 */
export function registeredNetwork(kind: string): NetworkDef<unknown> {
  const def = NETWORKS.find((d) => d.kind === kind);
  if (def === undefined) throw new DiffuseError(`unknown network kind '${kind}' (known: ${NETWORKS.map((d) => d.kind).join(', ')})`);
  return def as unknown as NetworkDef<unknown>;
}

/** Whether `def` is the registered definition of its kind (what worker threads will rebuild). */
export function isRegisteredNetwork(def: { readonly kind: string }): boolean {
  return NETWORKS.some((d) => d === def);
}
