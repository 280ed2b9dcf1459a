import type { LabelSelector } from '../../api/types.js';

/**
 * Label selectors compiled for the scheduler's hot loops, where one selector is matched
 * against every pod of the cluster: plain loops over the requirements, no allocation per
 * match. Semantics are those of api/labels.ts (an empty selector matches everything).
 */

export type LabelMatcher = (labels: Record<string, string> | undefined) => boolean;

const EVERYTHING: LabelMatcher = () => true;

/** Compiles a structured selector; undefined when an operator is unknown (it is invalid). */
export function compileSelector(selector: LabelSelector): LabelMatcher | undefined {
  const keys: string[] = [];
  const ops: string[] = [];
  const values: (string | string[])[] = [];
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    keys.push(key);
    ops.push('=');
    values.push(value);
  }
  for (const e of selector.matchExpressions ?? []) {
    if (!['In', 'NotIn', 'Exists', 'DoesNotExist'].includes(e.operator)) return undefined;
    keys.push(e.key);
    ops.push(e.operator);
    values.push(e.values ?? []);
  }
  if (keys.length === 0) return EVERYTHING;
  const n = keys.length;
  return (labels) => {
    for (let i = 0; i < n; i++) {
      const v = labels?.[keys[i]];
      switch (ops[i]) {
        case '=':
          if (v !== values[i]) return false;
          break;
        case 'In':
          if (v === undefined || !(values[i] as string[]).includes(v)) return false;
          break;
        case 'NotIn':
          if (v !== undefined && (values[i] as string[]).includes(v)) return false;
          break;
        case 'Exists':
          if (v === undefined) return false;
          break;
        default:
          if (v !== undefined) return false;
      }
    }
    return true;
  };
}
