/** A configuration problem, phrased for the operator: which file or key, and what was expected. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}
