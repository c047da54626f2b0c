/**
 * Bad input from the person running a command (a flag, a trace line, a model file): the message names
 * what was wrong and what was expected, in one line. Commands exit 2 on it, as on a bad configuration.
 */
export class InputError extends Error {
  override name = 'InputError';
}
