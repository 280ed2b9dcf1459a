import type { FieldError } from './errors.js';
import { isObj } from './json-shape.js';
import type { KObject } from './types.js';
import { isDns1123Subdomain } from './validation.js';

/**
 * ServiceAccount (v1): an identity for the processes of pods. flyCes stores them as
 * Kubernetes does, keeps a `default` one in every namespace (see the serviceaccount
 * controller) and gives pods theirs at admission, with its imagePullSecrets; it issues no
 * tokens, so `automountServiceAccountToken` mounts nothing.
 */
export interface ServiceAccount extends KObject {
  secrets?: { name?: string; namespace?: string }[];
  imagePullSecrets?: { name?: string }[];
  automountServiceAccountToken?: boolean;
}

/** The account every namespace has, and the one a pod naming none runs as. */
export const DEFAULT_SERVICE_ACCOUNT = 'default';

export function validateServiceAccount(obj: KObject): FieldError[] {
  const sa = obj as ServiceAccount;
  const errs: FieldError[] = [];
  const auto = sa.automountServiceAccountToken;
  if (auto !== undefined && typeof auto !== 'boolean') {
    errs.push({
      field: 'automountServiceAccountToken',
      type: 'Invalid',
      value: auto,
      detail: 'must be a boolean',
    });
  }
  for (const list of ['secrets', 'imagePullSecrets'] as const) {
    const refs: unknown = sa[list];
    if (refs === undefined) continue;
    if (!Array.isArray(refs)) {
      errs.push({ field: list, type: 'Invalid', detail: 'must be a list' });
      continue;
    }
    refs.forEach((ref: unknown, i) => {
      const at = `${list}[${i}]`;
      if (!isObj(ref)) {
        errs.push({ field: at, type: 'Invalid', detail: 'must be an object' });
        return;
      }
      if (ref.name === undefined || ref.name === '') {
        // Kubernetes leaves a secret reference's name optional, but a pull secret needs it.
        if (list === 'imagePullSecrets') errs.push({ field: `${at}.name`, type: 'Required' });
      } else if (typeof ref.name !== 'string' || !isDns1123Subdomain(ref.name)) {
        errs.push({
          field: `${at}.name`,
          type: 'Invalid',
          value: ref.name,
          detail:
            'a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, ' +
            "'-' or '.', and must start and end with an alphanumeric character",
        });
      }
    });
  }
  return errs;
}
