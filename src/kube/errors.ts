/** The HTTP status of a failed Kubernetes API call (client-node's ApiException), if it got one. */
export function kubeStatus(err: unknown): number | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'number')
    return err.code;
  return undefined;
}

/** The apiserver's own message (a Status object's `message`) of a failed call, else the error text. */
export function kubeMessage(err: unknown): string {
  if (typeof err === 'object' && err !== null && 'body' in err) {
    const body = err.body;
    const parsed = typeof body === 'string' ? safeJson(body) : body;
    if (
      typeof parsed === 'object' &&
      parsed !== null &&
      'message' in parsed &&
      typeof parsed.message === 'string'
    ) {
      return parsed.message;
    }
    if (typeof body === 'string' && body) return body;
  }
  return err instanceof Error ? err.message : String(err);
}

/** The apiserver's reason of a failed call (a Status object's `reason`: Forbidden, Invalid, NotFound…). */
export function kubeReason(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null || !('body' in err)) return undefined;
  const body = typeof err.body === 'string' ? safeJson(err.body) : err.body;
  if (typeof body === 'object' && body !== null && 'reason' in body && typeof body.reason === 'string') {
    return body.reason;
  }
  return undefined;
}

/** Timeouts, throttling, conflicts of the apiserver with itself and server errors pass with time. */
export function isTransientKubeError(err: unknown): boolean {
  const status = kubeStatus(err);
  if (status === undefined) return true; // network error or timeout: no answer at all
  return status === 429 || status >= 500;
}

/** A 403 from the ResourceQuota admission: a capacity signal, not a permission problem. */
export function isQuotaExceeded(err: unknown): boolean {
  return kubeStatus(err) === 403 && kubeMessage(err).includes('exceeded quota');
}

/** Seconds the apiserver asked the client to wait (Retry-After on 429), in milliseconds. */
export function kubeRetryAfterMs(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null || !('headers' in err)) return undefined;
  const headers = err.headers as Record<string, string> | undefined;
  const value = headers?.['retry-after'];
  const seconds = value === undefined ? Number.NaN : Number(value);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : undefined;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
