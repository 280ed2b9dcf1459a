import { RuntimeError } from '../runtime.js';

/** A registries.yaml or docker config that cannot be used; the message names the field. */
export class RegistryConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RegistryConfigError';
  }
}

/** The error every failed pull ends in; the message says what went wrong and where. */
export function pullError(message: string): RuntimeError {
  return new RuntimeError('ErrImagePull', message);
}

/**
 * Replaces every secret that occurs in `message` with `***`. Messages are built without
 * secrets; this guards against a registry or token service that echoes one back.
 */
export function redact(message: string, secrets: Iterable<string>): string {
  let out = message;
  for (const secret of secrets) {
    if (secret.length >= 3) out = out.split(secret).join('***');
  }
  return out;
}
