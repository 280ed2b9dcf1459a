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

const SI_EXPONENTS: Record<string, number> = { n: -9, u: -6, m: -3, '': 0, k: 3, M: 6, G: 9 };
Object.assign(SI_EXPONENTS, { T: 12, P: 15, E: 18 });
const SI_SUFFIXES = new Map(Object.entries(SI_EXPONENTS).map(([s, e]) => [e, s]));
const BINARY_SUFFIXES = ['', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'];

/**
 * A quantity as Kubernetes writes it back (its canonical form), or undefined when `value`
 * is not a quantity or is negative (left as written, for validation to name). The form of
 * the suffix is kept: a binary one (Ki..Ei) in the largest unit that keeps the number whole
 * ("1.5Gi" is "1536Mi"), or without one below 1024 or where no unit does; a decimal one
 * (m, k, M ...) or an exponent in the largest power of 1000 that keeps it whole ("0.5" is
 * "500m", "1000" is "1k", "5e-1" is "500e-3"). Precision ends at 1n, rounded up, as in
 * Kubernetes. A JSON number is read as its decimal text.
 */
export function canonicalQuantity(value: unknown): string | undefined {
  const text = typeof value === 'number' ? numberText(value) : value;
  if (typeof text !== 'string') return undefined;
  const match = QUANTITY.exec(text);
  if (!match || match[1].startsWith('-')) return undefined;
  const [, digits, suffix, exponent] = match;
  const [whole, fraction = ''] = digits.replace(/^\+/, '').split('.');
  let mantissa = BigInt(`${whole}${fraction}` || '0');
  let power = -fraction.length + (exponent !== undefined ? Number(exponent) : 0);
  const binary = suffix !== undefined && suffix.endsWith('i');
  if (binary) mantissa *= 1024n ** BigInt(BINARY_SUFFIXES.indexOf(suffix));
  else if (suffix !== undefined) power += SI_EXPONENTS[suffix];
  if (binary) {
    const bytes = wholeValue(mantissa, power);
    if (bytes !== undefined && bytes >= 1024n) return base1024(bytes);
  }
  return base1000(mantissa, power, exponent !== undefined);
}

/** The value mantissa * 10^power as a whole number; undefined when it has a fraction. */
function wholeValue(mantissa: bigint, power: number): bigint | undefined {
  if (power >= 0) return mantissa * 10n ** BigInt(power);
  const divisor = 10n ** BigInt(-power);
  return mantissa % divisor === 0n ? mantissa / divisor : undefined;
}

function base1024(bytes: bigint): string {
  let unit = 0;
  while (bytes % 1024n === 0n && unit < BINARY_SUFFIXES.length - 1) {
    bytes /= 1024n;
    unit++;
  }
  return `${bytes}${BINARY_SUFFIXES[unit]}`;
}

function base1000(mantissa: bigint, power: number, asExponent: boolean): string {
  while (((power % 3) + 3) % 3 !== 0) {
    mantissa *= 10n;
    power--;
  }
  if (power < -9) {
    const divisor = 10n ** BigInt(-9 - power);
    mantissa = (mantissa + divisor - 1n) / divisor;
    power = -9;
  }
  const top = asExponent ? Infinity : 18;
  while (mantissa !== 0n && mantissa % 1000n === 0n && power < top) {
    mantissa /= 1000n;
    power += 3;
  }
  if (mantissa === 0n) return '0';
  if (asExponent) return power === 0 ? `${mantissa}` : `${mantissa}e${power}`;
  return `${mantissa}${SI_SUFFIXES.get(power)}`;
}

/** A JSON number's text in the quantity grammar (no "e+"). */
function numberText(n: number): string | undefined {
  if (!Number.isFinite(n)) return undefined;
  return String(n).replace('e+', 'e');
}
