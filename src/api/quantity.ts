/**
 * Kubernetes resource quantities ("100m", "1.5", "512Mi", "2G", "1e3"). flyCes works on
 * them as numbers: the value in base units (cores, bytes), held in a double. This is exact
 * for every quantity a pod spec writes in practice (up to 2^53 bytes, millicore steps).
 */

const BINARY: Record<string, number> = {
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};
const DECIMAL: Record<string, number> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
};

const QUANTITY = /^([+-]?(?:\d+\.?\d*|\.\d+))(?:(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])|[eE]([+-]?\d+))?$/;

/** Parses a quantity into base units; undefined when the text is not a quantity. */
export function parseQuantity(text: string | number): number | undefined {
  if (typeof text === 'number') return Number.isFinite(text) ? text : undefined;
  if (typeof text !== 'string') return undefined;
  const match = QUANTITY.exec(text.trim());
  if (!match) return undefined;
  const [, digits, suffix, exponent] = match;
  let value = Number(digits);
  if (exponent !== undefined) value *= 10 ** Number(exponent);
  else if (suffix !== undefined) value *= BINARY[suffix] ?? DECIMAL[suffix];
  return Number.isFinite(value) ? value : undefined;
}

/** Parses a quantity, throwing with the offending text when it is not one. */
export function mustParseQuantity(text: string | number): number {
  const value = parseQuantity(text);
  if (value === undefined) throw new Error(`quantity ${JSON.stringify(text)} is not valid`);
  return value;
}

/** CPU quantity in millicores, rounded up as Kubernetes does for requests. */
export function cpuMillis(text: string | number | undefined): number {
  if (text === undefined) return 0;
  return Math.ceil(mustParseQuantity(text) * 1000 - 1e-9);
}

/** Formats a byte count the way kubelet reports capacity: in Ki. */
export function formatKi(bytes: number): string {
  return `${Math.floor(bytes / 1024)}Ki`;
}
