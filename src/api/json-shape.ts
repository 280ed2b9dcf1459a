/** A JSON object as a request decodes it, before validation has said what it holds. */
export type Obj = Record<string, unknown>;

/** Whether `v` is a JSON object: not null, not an array. */
export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
