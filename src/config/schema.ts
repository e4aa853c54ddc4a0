// THE configuration schema: the one source of the config types (z.output), of validation, and of
// gatehouse.schema.json for editors (z.toJSONSchema, input side). Durations and sizes are strings in
// the file and numbers (ms, bytes) after parsing, so the runtime never parses units.
import { z } from 'zod';
import { DURATION_RE, parseAddress, parseDuration, parseSize, SIZE_RE } from './units.ts';

const DURATION_MSG = 'expected a duration such as 500ms, 5s, 1m or 2h';
const SIZE_MSG = 'expected a size such as 512b, 32kb, 10mb or 1gb';

export const duration = z
  .string({ error: DURATION_MSG })
  .regex(new RegExp(`${DURATION_RE.source}|^0$`), DURATION_MSG)
  .transform((s) => parseDuration(s) as number)
  .meta({ description: 'A duration: a number followed by ms, s, m or h.' });

export const size = z
  .string({ error: SIZE_MSG })
  .regex(new RegExp(`${SIZE_RE.source}|^0$`, 'i'), SIZE_MSG)
  .transform((s) => parseSize(s) as number)
  .meta({ description: 'A size: a number followed by b, kb, mb or gb (binary multiples).' });

export const address = z
  .string({ error: 'expected an address such as 127.0.0.1:8080, [::1]:8080 or :8080' })
  .refine(
    (s) => parseAddress(s) !== undefined,
    'expected an address such as 127.0.0.1:8080, [::1]:8080 or :8080',
  );

const name = z
  .string({ error: 'expected a name' })
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9_.-]*$/,
    'names use letters, digits, ".", "_" and "-", starting with a letter or digit',
  );

const headerName = z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'not a valid header name');

// ---------------------------------------------------------------- listeners
const listenerTls = z.strictObject({
  /** Certificates chosen by SNI from the names in each one's subjectAltName; the first is the default. */
  certificates: z
    .array(z.strictObject({ certFile: z.string(), keyFile: z.string() }))
    .min(1, 'a TLS listener needs at least one certificate'),
  /** Oldest protocol accepted: TLS 1.2 (default) or 1.3. */
  minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).prefault('TLSv1.2'),
  /** Offer HTTP/2 by ALPN (h2, then http/1.1). */
  http2: z.boolean().prefault(true),
  /** Staple OCSP answers for certificates that name a responder (their file must hold the issuer too). */
  ocspStapling: z.boolean().prefault(true),
  /** Re-read certificate and key files when they change, checked this often; 0 turns it off. */
  reloadInterval: duration.prefault('5s'),
  /** Strict-Transport-Security on every response: max-age in seconds (e.g. 31536000), or off. */
  hsts: z
    .strictObject({
      maxAge: z.number().int().min(0),
      includeSubDomains: z.boolean().prefault(false),
      preload: z.boolean().prefault(false),
    })
    .optional(),
  /** Client certificates (mTLS): ask for one, or refuse the handshake without a valid one. */
  clientAuth: z
    .strictObject({
      mode: z.enum(['request', 'require']).prefault('require'),
      /** CA certificates (PEM) that client certificates must chain to. */
      caFile: z.string(),
      /** Headers sent upstream with the verified certificate's details; any the client sent are removed. */
      headers: z
        .strictObject({
          subject: headerName.prefault('x-client-cert-subject'),
          fingerprint: headerName.prefault('x-client-cert-sha256'),
          verified: headerName.prefault('x-client-cert-verified'),
        })
        .prefault({}),
    })
    .optional(),
  passthrough: z.boolean().optional(),
});

export const listenerSchema = z.strictObject({
  /** Referenced by `routes[].listeners`. */
  name,
  /** host:port; `:8080` is every interface, port 0 picks a free port (tests). */
  address,
  protocol: z.enum(['http', 'tcp']).prefault('http'),
  tls: listenerTls.optional(),
  /** Cleartext HTTP/2 (h2c) with prior knowledge, beside HTTP/1.1, on a listener without TLS. */
  h2c: z.boolean().prefault(false),
  /** Answer every request with a redirect to https:// (301 for GET/HEAD, 308 otherwise). */
  redirectToHttps: z
    .strictObject({
      /** The HTTPS port to send clients to; 443 is left out of the URL. */
      port: z.number().int().min(1).max(65535).prefault(443),
    })
    .optional(),
  /** Peers whose X-Forwarded-* / Forwarded headers are believed (CIDRs or addresses). Overrides forwarding.trustedProxies. */
  trustedProxies: z.array(z.string()).optional(),
  /** HTTP/2 limits per connection. */
  http2Limits: z
    .strictObject({
      maxConcurrentStreams: z.number().int().min(1).prefault(100),
      /** Stream resets a client may send: a burst, then a rate per second (CVE-2023-44487, rapid reset). */
      resetBurst: z.number().int().min(1).prefault(200),
      resetRate: z.number().int().min(1).prefault(50),
    })
    .prefault({}),
});

// ---------------------------------------------------------------- middlewares
export const rateLimitSchema = z.strictObject({
  /** Tokens added per `per`. */
  rate: z.number().positive(),
  per: duration.prefault('1s'),
  /** Bucket size: how many requests may arrive at once above the steady rate. Default: rate. */
  burst: z.number().int().nonnegative().optional(),
  /** What one bucket counts: the client address, a request header (`header:x-api-key`), or the route as a whole. */
  key: z
    .string()
    .regex(
      /^(clientIp|route|header:[!#$%&'*+.^_`|~0-9A-Za-z-]+)$/,
      'expected clientIp, route or header:<name>',
    )
    .prefault('clientIp'),
  /** Buckets kept at most; the least recently used are dropped beyond it. */
  maxKeys: z.number().int().positive().prefault(100_000),
});

const headerOps = z.strictObject({
  set: z.record(headerName, z.string()).optional(),
  add: z.record(headerName, z.string()).optional(),
  remove: z.array(headerName).optional(),
});

export const headersSchema = z.strictObject({
  /** Applied to the request sent upstream. */
  request: headerOps.optional(),
  /** Applied to the response sent to the client. */
  response: headerOps.optional(),
});

export const ipFilterSchema = z.strictObject({
  allow: z.array(z.string()).optional(),
  deny: z.array(z.string()).optional(),
});

export const MIDDLEWARE_KINDS = ['rateLimit', 'headers', 'ipFilter'] as const;

export const middlewareSchema = z
  .strictObject({
    rateLimit: rateLimitSchema.optional(),
    headers: headersSchema.optional(),
    ipFilter: ipFilterSchema.optional(),
  })
  .refine((m) => Object.keys(m).length === 1, {
    message: `a middleware has exactly one kind: ${MIDDLEWARE_KINDS.join(', ')}`,
  });

// ---------------------------------------------------------------- routes
const stringList = z
  .union([z.string(), z.array(z.string()).min(1)])
  .transform((v) => (Array.isArray(v) ? v : [v]));

export const matchSchema = z.strictObject({
  /** Exact names or `*.example.com` (any depth of subdomain); case-insensitive, port ignored. */
  hosts: stringList.optional(),
  /** TLS server names (SNI) the client asked for: exact or `*.` wildcards; only TLS listeners have one. */
  sni: stringList.optional(),
  /** Exact path. */
  path: z.string().startsWith('/', 'a path starts with "/"').optional(),
  /** Prefix on a segment boundary: `/api` matches /api and /api/x, not /apix. */
  pathPrefix: z.string().startsWith('/', 'a path prefix starts with "/"').optional(),
  /** A regular expression tested against the path (no backreferences or lookarounds). */
  pathRegex: z.string().optional(),
  methods: z
    .array(z.string().regex(/^[A-Z]+$/, 'methods are upper case, e.g. GET'))
    .min(1)
    .optional(),
  /** Header name → exact value, or `*` for "present". */
  headers: z.record(headerName, z.string()).optional(),
  /** Query parameter → exact value, or `*` for "present". */
  query: z.record(z.string(), z.string()).optional(),
});

export const routeSchema = z.strictObject({
  name,
  /** Listener names; default: every HTTP listener. */
  listeners: z.array(z.string()).min(1).optional(),
  match: matchSchema.prefault({}),
  /** Higher is tried first; ties are broken by specificity, then by order in the file. */
  priority: z.number().int().prefault(0),
  /** Remove the matched pathPrefix before forwarding. */
  stripPrefix: z.boolean().prefault(false),
  /** Regex rewrite of the path (query kept); `$1` in replacement refers to a capture group. */
  rewrite: z.strictObject({ regex: z.string(), replacement: z.string() }).optional(),
  middlewares: z.array(z.string()).prefault([]),
  upstream: z.string({ error: 'every route names an upstream' }),
  /** Overrides limits.maxRequestBody for this route. */
  maxRequestBody: size.optional(),
});

// ---------------------------------------------------------------- upstreams
export const BALANCERS = ['roundRobin', 'leastConnections', 'ipHash', 'consistentHash', 'random2'] as const;

const targetSchema = z.strictObject({
  url: z
    .string()
    .refine((u) => URL.canParse(u), 'expected a URL such as http://127.0.0.1:3000')
    .refine(
      (u) => !URL.canParse(u) || ['http:', 'https:', 'h2c:'].includes(new URL(u).protocol),
      'a target is http://, https:// or h2c:// (cleartext HTTP/2)',
    ),
  weight: z.number().int().min(1).max(1000).prefault(1),
  /** Used only while every primary (non-backup) target is unavailable. */
  backup: z.boolean().prefault(false),
  /** Takes no new requests; requests already on it finish. Health checks keep running. */
  drain: z.boolean().prefault(false),
});

const STATUS_MSG = 'expected a status such as 503, a range "500-504" or a class "5xx"';
const statusPattern = z
  .union(
    [
      z.number().int().min(100, STATUS_MSG).max(599, STATUS_MSG),
      z.string().regex(/^\d{3}(-\d{3})?$|^[1-5]xx$/, STATUS_MSG),
    ],
    {
      error: STATUS_MSG,
    },
  )
  .transform((v) => String(v));
const statusList = z.array(statusPattern);

export const healthCheckSchema = z.strictObject({
  /** `http` sends a request and checks the answer; `tcp` only opens a connection. */
  type: z.enum(['http', 'tcp']).prefault('http'),
  method: z
    .string()
    .regex(/^[A-Z]+$/, 'methods are upper case, e.g. GET')
    .prefault('GET'),
  path: z.string().startsWith('/').prefault('/'),
  /** Probe this port instead of the target's (a separate health port). */
  port: z.number().int().min(1).max(65535).optional(),
  /** Sent with every probe; `Host` here overrides the target's host:port. */
  headers: z.record(headerName, z.string()).prefault({}),
  interval: duration.prefault('5s'),
  timeout: duration.prefault('2s'),
  healthyAfter: z.number().int().min(1).prefault(2),
  unhealthyAfter: z.number().int().min(1).prefault(2),
  /** Expected statuses: 2xx and 3xx by default. */
  expectStatus: statusList.prefault(['2xx', '3xx']),
  /** A regular expression the first 64 KiB of the body must match. */
  expectBody: z.string().optional(),
});

export const outlierDetectionSchema = z.strictObject({
  enabled: z.boolean().prefault(true),
  /** Consecutive failures (connect failures, resets, timeouts, `statuses`) that eject a target. */
  consecutiveFailures: z.number().int().min(1).prefault(5),
  /** Response statuses counted as failures. */
  statuses: statusList.prefault(['502-504']),
  /** The first ejection lasts this long; each further one of the same target one more of it. */
  baseEjectionTime: duration.prefault('30s'),
  maxEjectionTime: duration.prefault('5m'),
  /** At most this share of an upstream's targets is ejected at once (at least one when it has two or more). */
  maxEjectionPercent: z.number().int().min(0).max(100).prefault(50),
});

export const RETRY_ON = ['connect-failure', 'reset', 'timeout'] as const;

export const retrySchema = z.strictObject({
  /** Tries in all, the first included; each retry goes to a target not tried yet. 1 turns retries off. */
  attempts: z.number().int().min(1).max(10).prefault(3),
  /** Failures that are retried (connect-failure: nothing reached the target). */
  on: z.array(z.enum(RETRY_ON)).prefault(['connect-failure', 'reset', 'timeout']),
  /** Response statuses that are retried (the response is discarded unless it is the last try). */
  statuses: statusList.prefault([]),
  /** Also retry POST, PATCH and other non-idempotent methods after a reset, timeout or status. */
  nonIdempotent: z.boolean().prefault(false),
  /** How long one try may wait for response headers. Default: timeouts.response. */
  perTryTimeout: duration.optional(),
  /**
   * Over the last `window`, retries at most `percent` of the upstream's requests, or `minRetries`
   * when that is more. Connect failures are not counted: nothing reached a target.
   */
  budget: z
    .strictObject({
      percent: z.number().min(0).max(100).prefault(20),
      minRetries: z.number().int().min(0).prefault(10),
      window: duration.prefault('10s'),
    })
    .prefault({}),
});

export const circuitBreakerSchema = z.strictObject({
  /** Requests waiting for a free connection, at most; more get a fast 503 (upstream_overflow). */
  maxPending: z.number().int().min(0).prefault(1024),
  /** Requests in flight to the upstream at most (default: no limit beyond connections + pending). */
  maxRequests: z.number().int().min(1).optional(),
});

export const hashKeySchema = z
  .string()
  .regex(
    /^(path|clientIp|(header|cookie|query):.+)$/,
    'expected path, clientIp, header:<name>, cookie:<name> or query:<name>',
  );

export const upstreamSchema = z.strictObject({
  loadBalancer: z.enum(BALANCERS).prefault('roundRobin'),
  /** What consistentHash hashes (default path). */
  hashKey: hashKeySchema.optional(),
  targets: z.array(targetSchema).min(1, 'an upstream needs at least one target'),
  /** Open connections to one target at most (requests beyond it wait in the pool's queue). */
  maxConnectionsPerTarget: z.number().int().positive().prefault(256),
  /** Send the client's Host header upstream (true) or the target's host:port (false). */
  passHostHeader: z.boolean().prefault(true),
  timeouts: z
    .strictObject({
      connect: duration.prefault('5s'),
      /** From the request sent to the response headers received, over all tries together. */
      response: duration.prefault('60s'),
      /** Longest silence while the response body streams; 0 turns it off. */
      idle: duration.prefault('60s'),
      /** How long an unused pooled connection stays open. */
      keepAlive: duration.prefault('4s'),
      /** A WebSocket with no traffic either way for this long is closed; 0 turns it off. */
      tunnelIdle: duration.prefault('5m'),
      /** A WebSocket is closed after this long whatever its traffic; 0 (default) is no limit. */
      tunnelMaxLifetime: duration.prefault('0s'),
    })
    .prefault({}),
  /** For https:// targets: whom to trust, the name to verify, a client certificate (mTLS to the upstream). */
  tls: z
    .strictObject({
      /** CA certificates (PEM) to verify targets against; default: the system store. */
      caFile: z.string().optional(),
      /** The name sent by SNI and verified in the certificate; default: the target's host. */
      servername: z.string().optional(),
      /** A client certificate and key (PEM) for upstreams that require mTLS. */
      certFile: z.string().optional(),
      keyFile: z.string().optional(),
      /** Do not verify the target's certificate. Only for testing: anyone on the path can read and change the traffic. */
      insecureSkipVerify: z.boolean().prefault(false),
    })
    .prefault({}),
  /** Offer HTTP/2 to https:// targets by ALPN (they may still answer HTTP/1.1). */
  http2: z.boolean().prefault(true),
  healthCheck: healthCheckSchema.optional(),
  outlierDetection: outlierDetectionSchema.prefault({}),
  retry: retrySchema.prefault({}),
  circuitBreaker: circuitBreakerSchema.prefault({}),
  /** A recovered or added target's weight ramps from 10% to 100% over this window; 0 turns it off. */
  slowStart: duration.prefault('0s'),
});

// ---------------------------------------------------------------- top level
export const limitsSchema = z.strictObject({
  maxRequestBody: size.prefault('10mb'),
  maxRequestHeaders: size.prefault('32kb'),
  maxUriLength: size.prefault('8kb'),
  headerTimeout: duration.prefault('10s'),
  keepAliveTimeout: duration.prefault('60s'),
  /** Longest silence while a request body is being received; 0 turns it off. */
  bodyTimeout: duration.prefault('60s'),
});

export const forwardingSchema = z.strictObject({
  /** Peers allowed to set X-Forwarded-For/-Proto/-Host and Forwarded (CIDRs or addresses). */
  trustedProxies: z.array(z.string()).prefault([]),
  /** Also send the RFC 7239 Forwarded header. */
  forwarded: z.boolean().prefault(false),
  /** The Via pseudonym; also used to detect loops (508). Default: gatehouse-<random>. */
  via: z
    .string()
    .regex(/^[A-Za-z0-9._-]+$/)
    .optional(),
});

export const ACCESS_LOG_FIELDS = [
  'time',
  'timeLocal',
  'requestId',
  'traceId',
  'spanId',
  'listener',
  'clientIp',
  'method',
  'host',
  'path',
  'protocol',
  'request',
  'status',
  'bytes',
  'bytesIn',
  'route',
  'upstream',
  'target',
  'attempts',
  'upstreamMs',
  'durationMs',
  'reason',
  'userAgent',
  'referer',
] as const;

export const accessLogSchema = z.strictObject({
  enabled: z.boolean().prefault(true),
  /** `stdout`, `stderr` or a file path (appended; reopened on SIGUSR1). */
  path: z.string().prefault('stdout'),
  /** `json` (one object per line), `combined` (nginx's), or `template`. */
  format: z.enum(['json', 'combined', 'template']).prefault('json'),
  /** For json: the fields, in order. Default: time, requestId, listener, clientIp, method, host, path, protocol, status, bytes, route, upstream, target, attempts, upstreamMs, durationMs, traceId (when tracing), reason (on errors). */
  fields: z.array(z.enum(ACCESS_LOG_FIELDS)).min(1).optional(),
  /** For template: text with `$field` names, e.g. `$clientIp "$request" $status $durationMs rid=$requestId`. */
  template: z.string().optional(),
});

export const tracingSchema = z.strictObject({
  /** OTLP/HTTP traces endpoint of the collector, e.g. http://127.0.0.1:4318/v1/traces. */
  endpoint: z
    .string()
    .refine((u) => URL.canParse(u) && /^https?:$/.test(new URL(u).protocol), 'expected an http(s) URL'),
  serviceName: z.string().prefault('gatehouse'),
  /** Share of new traces that are sampled; a request with a traceparent keeps its caller's decision. */
  sampleRate: z.number().min(0).max(1).prefault(1),
  /** Sent with every export (an API key for the collector, for example). */
  headers: z.record(headerName, z.string()).prefault({}),
  /** Spans per export at most. */
  maxBatch: z.number().int().min(1).prefault(512),
  /** Longest wait before an export. */
  flushInterval: duration.prefault('1s'),
});

export const adminSchema = z.strictObject({
  address: address.prefault('127.0.0.1:9901'),
  token: z.string().optional(),
});

export const configSchema = z.strictObject({
  $schema: z.string().optional(),
  admin: adminSchema.optional(),
  listeners: z.array(listenerSchema).min(1, 'at least one listener is needed'),
  routes: z.array(routeSchema).prefault([]),
  middlewares: z.record(name, middlewareSchema).prefault({}),
  upstreams: z.record(name, upstreamSchema).prefault({}),
  limits: limitsSchema.prefault({}),
  forwarding: forwardingSchema.prefault({}),
  accessLog: accessLogSchema.prefault({}),
  /** OpenTelemetry tracing; off without this block. */
  tracing: tracingSchema.optional(),
  /** How long in-flight requests may take to finish after SIGTERM/SIGINT. */
  shutdownGracePeriod: duration.prefault('10s'),
});

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
export type RouteConfig = z.output<typeof routeSchema>;
export type MatchConfig = z.output<typeof matchSchema>;
export type UpstreamConfig = z.output<typeof upstreamSchema>;
export type HealthCheckConfig = z.output<typeof healthCheckSchema>;
export type OutlierDetectionConfig = z.output<typeof outlierDetectionSchema>;
export type RetryConfig = z.output<typeof retrySchema>;
export type MiddlewareConfig = z.output<typeof middlewareSchema>;
export type RateLimitConfig = z.output<typeof rateLimitSchema>;
export type HeadersConfig = z.output<typeof headersSchema>;
export type IpFilterConfig = z.output<typeof ipFilterSchema>;
export type LimitsConfig = z.output<typeof limitsSchema>;
export type BalancerName = (typeof BALANCERS)[number];

/** JSON Schema (draft 2020-12) of the file as written, for editors (`gatehouse schema`). */
export function jsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }),
    $id: 'https://gatehouse.dev/gatehouse.schema.json',
    title: 'Gatehouse configuration',
  };
}
