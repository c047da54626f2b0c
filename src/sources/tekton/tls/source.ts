import type { CertificateAndKey } from './certificates.ts';

/** Where the admission server gets the certificate it serves, now and after every rotation. */
export interface ServingCertificateSource {
  /** The certificate to serve; undefined until the first one is known. */
  current(): CertificateAndKey | undefined;
  /** Calls `listener` with every later certificate; returns the function that unsubscribes. */
  subscribe(listener: (pair: CertificateAndKey) => void): () => void;
}

/** A source that runs (polls files, checks a Secret) until stopped. */
export interface RunningCertificateSource extends ServingCertificateSource {
  /** Stops the periodic checks; resolves once a check in flight has ended. */
  stop(): Promise<void>;
}

/** The mutable heart of a source: holds the current pair and tells subscribers of a new one. */
export function createCertificateHolder(): ServingCertificateSource & {
  /** Makes `pair` current and reports it, unless it is the current one already. */
  set(pair: CertificateAndKey): boolean;
} {
  let current: CertificateAndKey | undefined;
  const listeners = new Set<(pair: CertificateAndKey) => void>();
  return {
    current: () => current,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    set(pair) {
      if (current && current.cert === pair.cert && current.key === pair.key) return false;
      current = pair;
      for (const listener of listeners) listener(pair);
      return true;
    },
  };
}
