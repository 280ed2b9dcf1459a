import { isIP } from 'node:net';

import type { FieldError } from './errors.js';
import { isObj } from './json-shape.js';
import type { PodSpec } from './types.js';
import { isDns1123Label, isDns1123Subdomain } from './validation.js';

/**
 * A pod's names for itself and its /etc/hosts entries: spec.hostname and spec.subdomain
 * are RFC 1123 labels, and each hostAliases entry has a valid IP and hostnames that are
 * RFC 1123 subdomains, as Kubernetes checks them.
 */
export function validateHostFields(spec: PodSpec, path: string): FieldError[] {
  const errs: FieldError[] = [];
  const fields = spec as unknown as Record<string, unknown>;
  for (const name of ['hostname', 'subdomain'] as const) {
    const value = fields[name];
    if (value === undefined || value === '') continue;
    if (typeof value !== 'string' || !isDns1123Label(value)) {
      errs.push({
        field: `${path}.${name}`,
        type: 'Invalid',
        value,
        detail:
          "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', " +
          'and must start and end with an alphanumeric character',
      });
    }
  }
  const aliases = fields.hostAliases;
  if (aliases === undefined) return errs;
  if (!Array.isArray(aliases)) {
    return [...errs, { field: `${path}.hostAliases`, type: 'Invalid', detail: 'must be a list' }];
  }
  aliases.forEach((alias: unknown, i) => {
    const at = `${path}.hostAliases[${i}]`;
    if (!isObj(alias)) {
      errs.push({ field: at, type: 'Invalid', detail: 'must be an object' });
      return;
    }
    if (alias.ip === undefined || alias.ip === '')
      errs.push({ field: `${at}.ip`, type: 'Required' });
    else if (typeof alias.ip !== 'string' || isIP(alias.ip) === 0) {
      errs.push({
        field: `${at}.ip`,
        type: 'Invalid',
        value: alias.ip,
        detail: 'must be a valid IP address',
      });
    }
    const names = alias.hostnames;
    if (names !== undefined && !Array.isArray(names)) {
      errs.push({ field: `${at}.hostnames`, type: 'Invalid', detail: 'must be a list' });
      return;
    }
    (names ?? []).forEach((name: unknown, j: number) => {
      if (typeof name !== 'string' || !isDns1123Subdomain(name)) {
        errs.push({
          field: `${at}.hostnames[${j}]`,
          type: 'Invalid',
          value: name,
          detail:
            'a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, ' +
            "'-' or '.', and must start and end with an alphanumeric character",
        });
      }
    });
  });
  return errs;
}
