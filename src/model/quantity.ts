/**
 * Kubernetes resource quantities ("500m", "2Gi", "1.5", "1e3") as plain numbers, so config checks
 * (requests ≤ limits) and quota arithmetic can compare them. Double precision is ample for the
 * sizes a runner pod asks for; the apiserver keeps the exact text.
 */

const QUANTITY = /^(\+?)(\d+(?:\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][-+]?\d+)?$/;

const SUFFIX_FACTORS: Readonly<Record<string, number>> = {
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
};

/** The value of a non-negative quantity in base units (cores, bytes), or undefined if it is not one. */
export function parseQuantity(text: string): number | undefined {
  const match = QUANTITY.exec(text.trim());
  if (!match) return undefined;
  const mantissa = match[2] ?? '';
  const suffix = match[3] ?? '';
  // A decimal exponent is read with the number, so 0e600 is 0 rather than 0 × Infinity.
  const value = /^[eE][-+]?\d+$/.test(suffix)
    ? Number(`${mantissa}e${suffix.slice(1)}`)
    : Number(mantissa) * (suffix === '' ? 1 : (SUFFIX_FACTORS[suffix] ?? Number.NaN));
  return Number.isFinite(value) ? value : undefined;
}

/** A CPU quantity in whole millicores, rounded up as Kubernetes does for sub-milli values. */
export function cpuMillicores(cores: number): number {
  return Math.ceil(cores * 1000 - 1e-9);
}
