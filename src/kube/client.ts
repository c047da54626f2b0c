import {
  AdmissionregistrationV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  createConfiguration,
  type HttpLibrary,
  IsomorphicFetchHttpLibrary,
  type KubeConfig,
  type RequestContext,
  ServerConfiguration,
  wrapHttpLibrary,
} from '@kubernetes/client-node';

/** One call to the apiserver as the metrics see it; `code` is 0 when no answer came. */
export interface KubeRequestRecord {
  verb: string;
  resource: string;
  code: number;
  /** From sending the request to its answer (or to giving up on one). */
  latencyMs: number;
  /** The wait the apiserver asked for (Retry-After on 429 and some 5xx), in ms. */
  retryAfterMs?: number;
}

export interface KubeApis {
  core: CoreV1Api;
  /** Leases, for leader election. */
  coordination: CoordinationV1Api;
  /** The MutatingWebhookConfiguration whose caBundle Gantry keeps current. */
  admission: AdmissionregistrationV1Api;
  /** Tekton PipelineRuns. */
  custom: CustomObjectsApi;
}

export interface KubeApiOptions {
  /** Upper bound of one request; the call is aborted after it. Watches are not made through these APIs. */
  timeoutMs: number;
  onResponse?: (record: KubeRequestRecord) => void;
}

/**
 * The typed Kubernetes APIs Gantry uses, each request bounded by a timeout and reported to
 * `onResponse`. Retries are the caller's choice: only the caller knows whether a call is idempotent.
 */
export function createKubeApis(kc: KubeConfig, options: KubeApiOptions): KubeApis {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig has no current cluster');
  const configuration = createConfiguration({
    baseServer: new ServerConfiguration(cluster.server, {}),
    authMethods: { default: kc },
    httpApi: boundedAndCounted(options),
  });
  return {
    core: new CoreV1Api(configuration),
    coordination: new CoordinationV1Api(configuration),
    admission: new AdmissionregistrationV1Api(configuration),
    custom: new CustomObjectsApi(configuration),
  };
}

/**
 * The default transport, with a deadline on every request, a record of every answer, and one
 * connection pool. The kubeconfig authenticator gives every request a dispatcher of its own, so each
 * call would open (and leave to the garbage collector) a new TLS connection; the first one is kept
 * and reused instead. Its TLS settings (CA, client certificate) are read once; bearer tokens travel in
 * headers and stay current.
 */
function boundedAndCounted({ timeoutMs, onResponse }: KubeApiOptions): HttpLibrary {
  const transport = new IsomorphicFetchHttpLibrary();
  let shared: ReturnType<RequestContext['getDispatcher']>;
  return wrapHttpLibrary({
    async send(request: RequestContext) {
      const own = request.getDispatcher();
      if (shared === undefined) shared = own;
      else if (own !== undefined && own !== shared) {
        request.setDispatcher(shared);
        void own.close();
      }
      const timeout = AbortSignal.timeout(timeoutMs);
      const signal = request.getSignal();
      request.setSignal(signal ? AbortSignal.any([signal, timeout]) : timeout);
      const described = describeRequest(request.getHttpMethod(), request.getUrl());
      const sentAt = performance.now();
      try {
        const response = await transport.send(request).toPromise();
        const retryAfter = Number(response.headers['retry-after'] ?? Number.NaN);
        onResponse?.({
          ...described,
          code: response.httpStatusCode,
          latencyMs: performance.now() - sentAt,
          ...(Number.isFinite(retryAfter) && retryAfter >= 0 ? { retryAfterMs: retryAfter * 1000 } : {}),
        });
        return response;
      } catch (err) {
        onResponse?.({ ...described, code: 0, latencyMs: performance.now() - sentAt });
        throw err;
      }
    },
  });
}

/**
 * Names a request the way the apiserver's own metrics do: a lower-case verb (list and watch told
 * apart from get) and the resource, with its subresource: `/api/v1/namespaces/x/pods/y/status`
 * is `pods/status`. Names and namespaces are left out to keep label values few. A dry run (the
 * apiserver labels it dry_run) changes nothing: its verb says so, `post-dry-run`, so that counting
 * writes does not count it.
 */
export function describeRequest(method: string, url: string): { verb: string; resource: string } {
  const { pathname, searchParams } = new URL(url);
  const parts = pathname.split('/').filter(Boolean);
  // /api/v1/... or /apis/group/version/...
  const rest = parts[0] === 'api' ? parts.slice(2) : parts.slice(3);
  if (rest[0] === 'namespaces' && rest.length > 2) rest.splice(0, 2);
  const [resource = '', name, subresource] = rest;
  const verb = method.toLowerCase();
  const named = name !== undefined;
  const collectionVerb = searchParams.get('watch') === 'true' ? 'watch' : 'list';
  const dryRun = searchParams.has('dryRun') ? '-dry-run' : '';
  return {
    verb: (verb === 'get' && !named ? collectionVerb : verb) + dryRun,
    resource: subresource ? `${resource}/${subresource}` : resource,
  };
}
