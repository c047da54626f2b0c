/** Kubernetes naming rules that Gantry checks in config and follows when it names objects. */

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

/** RFC 1123 label: lowercase alphanumerics and '-', at most 63 characters (namespaces, pod names). */
export function isDnsLabel(value: string): boolean {
  return value.length <= 63 && DNS_LABEL.test(value);
}

/** RFC 1123 subdomain: dot-separated labels, at most 253 characters (secret, claim, class names). */
export function isDnsSubdomain(value: string): boolean {
  return value.length <= 253 && value.split('.').every((part) => part.length > 0 && DNS_LABEL.test(part));
}

/** A label or annotation key: an optional DNS-subdomain prefix and '/', then a name of ≤ 63 characters. */
export function isQualifiedName(key: string): boolean {
  const slash = key.lastIndexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && !isDnsSubdomain(prefix)) return false;
  return name.length > 0 && name.length <= 63 && LABEL_NAME.test(name);
}

/** A label value: empty, or ≤ 63 alphanumerics, '-', '_' and '.', starting and ending alphanumeric. */
export function isLabelValue(value: string): boolean {
  return value === '' || (value.length <= 63 && LABEL_NAME.test(value));
}

/**
 * Turns free text (a repository "owner/name", a job id) into a valid label value: other characters
 * become '_', the result is cut to 63 and trimmed to alphanumeric ends. Lossy by design; the exact
 * text belongs in an annotation.
 */
export function toLabelValue(text: string): string {
  const replaced = text.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 63);
  return replaced.replace(/^[^A-Za-z0-9]+/, '').replace(/[^A-Za-z0-9]+$/, '');
}
