import type { LabelSelector } from './types.js';

/**
 * Label and field selectors. A selector is parsed once into requirements and then
 * matched against many objects, so parsing errors surface before any work is done.
 */

export type Operator = '=' | '!=' | 'in' | 'notin' | 'exists' | '!';

export interface Requirement {
  key: string;
  op: Operator;
  values: string[];
}

/** A parsed selector; an empty one matches everything. */
export class Selector {
  constructor(readonly requirements: Requirement[]) {}

  static everything(): Selector {
    return new Selector([]);
  }

  isEmpty(): boolean {
    return this.requirements.length === 0;
  }

  /** Whether a label set (or any key-to-value lookup) satisfies every requirement. */
  matches(get: Record<string, string> | ((key: string) => string | undefined)): boolean {
    const lookup = typeof get === 'function' ? get : (key: string) => get[key];
    return this.requirements.every((req) => matchOne(req, lookup(req.key)));
  }

  /** The value an `=` requirement pins the key to, used to narrow lists by index. */
  exactValue(key: string): string | undefined {
    const req = this.requirements.find((r) => r.key === key && r.op === '=');
    return req?.values[0];
  }

  toString(): string {
    return this.requirements.map(formatRequirement).join(',');
  }
}

function matchOne(req: Requirement, value: string | undefined): boolean {
  switch (req.op) {
    case '=':
      return value === req.values[0];
    case '!=':
      return value !== req.values[0];
    case 'in':
      return value !== undefined && req.values.includes(value);
    case 'notin':
      return value === undefined || !req.values.includes(value);
    case 'exists':
      return value !== undefined;
    case '!':
      return value === undefined;
  }
}

function formatRequirement(req: Requirement): string {
  switch (req.op) {
    case 'exists':
      return req.key;
    case '!':
      return `!${req.key}`;
    case 'in':
    case 'notin':
      return `${req.key} ${req.op} (${req.values.join(',')})`;
    default:
      return `${req.key}${req.op}${req.values[0]}`;
  }
}

export class SelectorError extends Error {}

/** Splits on commas that are not inside parentheses. */
function splitTerms(text: string): string[] {
  const terms: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '(') depth++;
    else if (ch === ')') depth--;
    else if (ch === ',' && depth === 0) {
      terms.push(text.slice(start, i));
      start = i + 1;
    }
  }
  terms.push(text.slice(start));
  return terms.map((t) => t.trim()).filter((t) => t.length > 0);
}

const SET_TERM = /^([^\s!=(),]+)\s+(in|notin)\s*\(([^()]*)\)$/;
const EQ_TERM = /^([^\s!=(),]+)\s*(==|=|!=)\s*([^\s!=(),]*)$/;
const KEY_TERM = /^(!?)\s*([^\s!=(),]+)$/;

/** Parses the string form used in `?labelSelector=` (`a=b,c!=d,e in (x,y),f,!g`). */
export function parseLabelSelector(text: string | undefined | null): Selector {
  if (!text) return Selector.everything();
  return new Selector(splitTerms(text).map(parseTerm));
}

function parseTerm(term: string): Requirement {
  let match = SET_TERM.exec(term);
  if (match) {
    const values = match[3]
      .split(',')
      .map((v) => v.trim())
      .filter((v) => v.length > 0);
    return { key: match[1], op: match[2] as Operator, values };
  }
  match = EQ_TERM.exec(term);
  if (match) {
    const op: Operator = match[2] === '!=' ? '!=' : '=';
    return { key: match[1], op, values: [match[3]] };
  }
  match = KEY_TERM.exec(term);
  if (match) return { key: match[2], op: match[1] ? '!' : 'exists', values: [] };
  throw new SelectorError(`unable to parse requirement: ${JSON.stringify(term)}`);
}

/**
 * Parses a field selector (`metadata.name=x,spec.nodeName!=y`); only equality and
 * inequality exist for fields, as in Kubernetes.
 */
export function parseFieldSelector(text: string | undefined | null): Selector {
  if (!text) return Selector.everything();
  return new Selector(
    splitTerms(text).map((term) => {
      const match = EQ_TERM.exec(term);
      if (!match) throw new SelectorError(`invalid field selector: ${JSON.stringify(term)}`);
      return { key: match[1], op: match[2] === '!=' ? '!=' : '=', values: [match[3]] };
    }),
  );
}

/** Converts a structured LabelSelector (as in a Deployment's spec) into a Selector. */
export function fromLabelSelector(sel: LabelSelector | undefined): Selector {
  if (!sel) return Selector.everything();
  const reqs: Requirement[] = [];
  for (const [key, value] of Object.entries(sel.matchLabels ?? {})) {
    reqs.push({ key, op: '=', values: [value] });
  }
  for (const expr of sel.matchExpressions ?? []) {
    const op = { In: 'in', NotIn: 'notin', Exists: 'exists', DoesNotExist: '!' }[expr.operator];
    if (!op) throw new SelectorError(`unknown selector operator ${JSON.stringify(expr.operator)}`);
    reqs.push({ key: expr.key, op: op as Operator, values: expr.values ?? [] });
  }
  return new Selector(reqs);
}

/** Formats a LabelSelector in the string form kubectl shows (`app=web`). */
export function formatLabelSelector(sel: LabelSelector | undefined): string {
  return fromLabelSelector(sel).toString();
}

/** Reads a dotted path (`spec.nodeName`) of an object as a string, for field selectors. */
export function fieldValue(obj: unknown, path: string): string | undefined {
  let cur: any = obj;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = cur[part];
  }
  if (cur === undefined || cur === null) return undefined;
  return typeof cur === 'object' ? JSON.stringify(cur) : String(cur);
}
