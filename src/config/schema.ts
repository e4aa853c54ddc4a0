// THE configuration schema: the one source of the config types (z.output), of validation, and of
// gatehouse.schema.json for editors (z.toJSONSchema, input side). Durations and sizes are strings in
// the file and numbers (ms, bytes) after parsing, so the runtime never parses units.
import { z } from 'zod';
import { RULE_CLASSES, ruleIndex } from '../waf/rules.ts';
import {
  DURATION_RE,
  parseAddress,
  parseCidr,
  parseDuration,
  parseSize,
  SIZE_RE,
  userRegexProblem,
} from './units.ts';

const DURATION_MSG = 'expected a duration such as 500ms, 5s, 1m or 2h';
const SIZE_MSG = 'expected a size such as 512b, 32kb, 10mb or 1gb';

// Descriptions (`.meta({ description })`) reach gatehouse.schema.json, where editors show them;
// docs/configuration.md says the same at more length (test/config/docs-keys.test.ts keeps the two
// in step). `reload` says what a reload (SIGHUP) does with a key: `hot` applies it at once,
// `restart` keeps the running value until the next start (src/config/reloadable.ts). Every
// top-level key says which; nested keys take their parent's unless they say otherwise.
declare module 'zod' {
  interface GlobalMeta {
    reload?: 'hot' | 'restart';
  }
}

export const duration = z
  .string({ error: DURATION_MSG })
  .regex(new RegExp(`${DURATION_RE.source}|^0$`), DURATION_MSG)
  .transform((s) => parseDuration(s) as number);

export const size = z
  .string({ error: SIZE_MSG })
  .regex(new RegExp(`${SIZE_RE.source}|^0$`, 'i'), SIZE_MSG)
  .transform((s) => parseSize(s) as number);

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

const httpStatus = z.number().int().min(100).max(599);

const headerName = z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'not a valid header name');

/** An IP address or a CIDR block, checked by node:net (see parseCidr). */
const cidr = z
  .string()
  .refine((s) => parseCidr(s) !== undefined, 'expected an IP address or CIDR such as 10.0.0.0/8 or ::1');
const cidrList = z.array(cidr);

/** A user regex: it must compile for V8's linear-time engine, which is what the router runs it on. */
const userRegex = z.string().superRefine((s, ctx) => {
  const problem = userRegexProblem(s);
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem, input: s });
});

// ---------------------------------------------------------------- listeners
const listenerTls = z.strictObject({
  certificates: z
    .array(
      z.strictObject({
        certFile: z
          .string()
          .meta({ description: 'Certificate in PEM; the file may hold the chain after the leaf.' }),
        keyFile: z.string().meta({ description: 'Private key of the certificate, in PEM.' }),
      }),
    )
    .min(1, 'a TLS listener needs at least one certificate')
    .meta({
      description:
        'Certificates chosen by SNI from the names in each one’s subjectAltName; the first is the default.',
    }),
  minVersion: z
    .enum(['TLSv1.2', 'TLSv1.3'])
    .prefault('TLSv1.2')
    .meta({ description: 'Oldest protocol version accepted: TLSv1.2 or TLSv1.3.' }),
  http2: z.boolean().prefault(true).meta({ description: 'Offer HTTP/2 by ALPN (h2, then http/1.1).' }),
  ocspStapling: z.boolean().prefault(true).meta({
    description:
      'Staple OCSP answers for certificates that name a responder (the file must hold the issuer after the leaf).',
  }),
  reloadInterval: duration.prefault('5s').meta({
    description: 'How often certificate and key files are checked for changes and re-read; 0 turns it off.',
  }),
  hsts: z
    .strictObject({
      maxAge: z.number().int().min(0).meta({ description: 'max-age in seconds, e.g. 31536000 (a year).' }),
      includeSubDomains: z
        .boolean()
        .prefault(false)
        .meta({ description: 'Add includeSubDomains: the policy covers every subdomain too.' }),
      preload: z
        .boolean()
        .prefault(false)
        .meta({ description: 'Add preload, for browsers’ built-in HSTS lists.' }),
    })
    .optional()
    .meta({ description: 'Strict-Transport-Security on every response of this listener; off without it.' }),
  clientAuth: z
    .strictObject({
      mode: z.enum(['request', 'require']).prefault('require').meta({
        description:
          'require: refuse the handshake without a valid client certificate; request: ask for one, and let clients without one through.',
      }),
      caFile: z
        .string()
        .meta({ description: 'CA certificates (PEM) that client certificates must chain to.' }),
      headers: z
        .strictObject({
          subject: headerName
            .prefault('x-client-cert-subject')
            .meta({ description: 'Header carrying the verified certificate’s subject.' }),
          fingerprint: headerName
            .prefault('x-client-cert-sha256')
            .meta({ description: 'Header carrying the certificate’s SHA-256 fingerprint.' }),
          verified: headerName
            .prefault('x-client-cert-verified')
            .meta({ description: 'Header saying whether a certificate was presented and verified.' }),
        })
        .prefault({})
        .meta({
          description:
            'Headers sent upstream with the verified certificate’s details; any the client sent are removed.',
        }),
    })
    .optional()
    .meta({
      description: 'Client certificates (mTLS): ask for one, or refuse the handshake without a valid one.',
    }),
});

export const listenerSchema = z.strictObject({
  name: name.meta({ description: 'The listener’s name, referenced by routes[].listeners.' }),
  address: address.meta({
    description:
      'host:port. 0.0.0.0:8080 is every IPv4 interface, [::]:8080 every interface, :8080 the same as 0.0.0.0:8080; port 0 picks a free port.',
  }),
  protocol: z
    .enum(['http'])
    .prefault('http')
    .meta({ description: 'http: HTTP/1.1, and HTTP/2 by ALPN or h2c. The only protocol for now.' }),
  tls: listenerTls.optional().meta({ description: 'TLS termination; the listener speaks HTTPS.' }),
  engine: z.enum(['gatehouse', 'node']).prefault('gatehouse').meta({
    description:
      'The HTTP/1.1 server: gatehouse (our own engine on raw sockets, the fast one) or node (node:http, kept for comparison and as a fallback). HTTP/2 is served by node:http2 either way.',
  }),
  h2c: z.boolean().prefault(false).meta({
    description: 'Cleartext HTTP/2 (h2c) with prior knowledge, beside HTTP/1.1, on a listener without TLS.',
  }),
  redirectToHttps: z
    .strictObject({
      port: z
        .number()
        .int()
        .min(1)
        .max(65535)
        .prefault(443)
        .meta({ description: 'The HTTPS port to send clients to; 443 is left out of the URL.' }),
    })
    .optional()
    .meta({
      description: 'Answer every request with a redirect to https:// (301 for GET/HEAD, 308 otherwise).',
    }),
  trustedProxies: cidrList.optional().meta({
    description:
      'Peers whose X-Forwarded-* and Forwarded headers are believed (addresses or CIDRs). Overrides forwarding.trustedProxies for this listener.',
  }),
  http2Limits: z
    .strictObject({
      maxConcurrentStreams: z
        .number()
        .int()
        .min(1)
        .prefault(100)
        .meta({ description: 'Streams a client may have open at once on one connection.' }),
      resetBurst: z.number().int().min(1).prefault(200).meta({
        description: 'Stream resets a client may send in a burst (rapid-reset protection, CVE-2023-44487).',
      }),
      resetRate: z
        .number()
        .int()
        .min(1)
        .prefault(50)
        .meta({ description: 'Stream resets per second a client may keep sending after the burst.' }),
    })
    .prefault({})
    .meta({ description: 'Limits per HTTP/2 connection.' }),
});

// ---------------------------------------------------------------- middlewares
export const rateLimitSchema = z.strictObject({
  rate: z.number().positive().meta({ description: 'Tokens added per `per`: the steady rate of requests.' }),
  per: duration.prefault('1s').meta({ description: 'The period of rate.' }),
  burst: z.number().int().nonnegative().optional().meta({
    description:
      'Bucket size: how many requests may arrive at once above the steady rate. Default: rate (rounded up).',
  }),
  key: z
    .string()
    .regex(
      /^(clientIp|route|header:[!#$%&'*+.^_`|~0-9A-Za-z-]+)$/,
      'expected clientIp, route or header:<name>',
    )
    .prefault('clientIp')
    .meta({
      description:
        'What one bucket counts: clientIp, route (every client together), or a request header (header:x-api-key).',
    }),
  maxKeys: z
    .number()
    .int()
    .positive()
    .prefault(100_000)
    .meta({ description: 'Buckets kept at most; the least recently used are dropped beyond it.' }),
  store: z.enum(['memory', 'redis']).prefault('memory').meta({
    description:
      'memory: per process; redis: one bucket per key for every process and node, decided by one atomic script in Redis (needs redis).',
  }),
  onStoreError: z.enum(['allow', 'deny', 'local']).prefault('local').meta({
    description:
      'With store: redis, when Redis cannot answer in time: allow the request, deny it (503), or decide with a per-process bucket.',
  }),
});

const headerOps = z.strictObject({
  set: z
    .record(headerName, z.string())
    .optional()
    .meta({ description: 'Header → value, replacing any value it had.' }),
  add: z
    .record(headerName, z.string())
    .optional()
    .meta({ description: 'Header → value, added beside any value it had.' }),
  remove: z.array(headerName).optional().meta({ description: 'Headers to remove.' }),
});

export const headersSchema = z.strictObject({
  request: headerOps
    .optional()
    .meta({ description: 'Changes to the request sent upstream (after the forwarding headers are set).' }),
  response: headerOps.optional().meta({ description: 'Changes to the response sent to the client.' }),
});

export const ipFilterSchema = z.strictObject({
  allow: cidrList
    .optional()
    .meta({ description: 'Addresses or CIDRs let through; anything else gets 403 forbidden.' }),
  deny: cidrList
    .optional()
    .meta({ description: 'Addresses or CIDRs that get 403 forbidden; deny wins over allow.' }),
});

export const cacheSchema = z
  .strictObject({
    store: z
      .enum(['memory', 'disk'])
      .prefault('memory')
      .meta({ description: 'Where responses are kept: memory, or files under path that survive a restart.' }),
    maxSize: size.prefault('256mb').meta({
      description: 'Bytes held in all (bodies and heads); the least recently used go first beyond it.',
    }),
    maxObjectSize: size
      .prefault('10mb')
      .meta({ description: 'Larger responses are streamed through and not stored.' }),
    path: z
      .string()
      .optional()
      .meta({ description: "The disk store's directory (created if missing); required with store: disk." }),
    key: z
      .array(z.enum(['scheme', 'host', 'path', 'query']))
      .min(1)
      .prefault(['host', 'path', 'query'])
      .meta({
        description:
          "What makes one cache key, plus any request headers the response names in Vary. HEAD shares GET's entry.",
      }),
    coalesce: z.boolean().prefault(true).meta({
      description:
        'One upstream fetch per key at a time; concurrent misses wait for it and share its answer.',
    }),
    lockTimeout: duration.prefault('5s').meta({
      description: 'How long a coalesced request waits for the fetch in flight before going upstream itself.',
    }),
    storeSetCookie: z.boolean().prefault(false).meta({
      description:
        'Store responses that carry Set-Cookie (and serve them, Set-Cookie included, to other clients). Off: never stored.',
    }),
    storeAuthorized: z.boolean().prefault(false).meta({
      description:
        'Treat requests with Authorization as cacheable even without public, s-maxage or must-revalidate (RFC 9111 §3.5). Off: the RFC rule.',
    }),
    heuristic: z.number().min(0).max(1).prefault(0.1).meta({
      description:
        'Heuristic freshness as a fraction of the time since Last-Modified, for heuristically cacheable statuses without explicit freshness; 0 turns it off.',
    }),
    maxHeuristic: duration.prefault('24h').meta({ description: 'The most heuristic freshness may give.' }),
    cdnCacheControl: z.boolean().prefault(true).meta({
      description:
        'Honour CDN-Cache-Control (RFC 9213): when it is present and valid, this cache follows it and ignores Cache-Control and Expires.',
    }),
    cacheStatusName: z
      .string()
      .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'expected a token')
      .prefault('gatehouse')
      .meta({ description: "The cache's name in the Cache-Status header (RFC 9211)." }),
  })
  .superRefine((c, ctx) => {
    if (c.store === 'disk' && c.path === undefined)
      ctx.addIssue({ code: 'custom', path: ['path'], message: 'store: disk needs a path' });
    if (c.maxObjectSize > c.maxSize)
      ctx.addIssue({ code: 'custom', path: ['maxObjectSize'], message: 'larger than maxSize' });
  });

export const COMPRESS_ENCODINGS = ['zstd', 'br', 'gzip'] as const;

export const compressSchema = z.strictObject({
  encodings: z.array(z.enum(COMPRESS_ENCODINGS)).min(1).prefault(['zstd', 'br', 'gzip']).meta({
    description:
      "Encodings offered, in the server's order of preference among those the client accepts equally.",
  }),
  minSize: size
    .prefault('1kb')
    .meta({ description: 'Responses known to be smaller (by Content-Length) are sent as they are.' }),
  types: z
    .array(
      z
        .string()
        .regex(
          /^[a-z0-9!#$&^_.+-]+\/(\*|[a-z0-9!#$&^_.+-]+)$/i,
          'expected a media type such as text/* or application/json',
        ),
    )
    .min(1)
    .prefault([
      'text/*',
      'application/json',
      'application/javascript',
      'application/xml',
      'image/svg+xml',
      'application/wasm',
    ])
    .meta({
      description: 'Media types compressed (type/* matches the whole type); others are sent as they are.',
    }),
  gzipLevel: z
    .number()
    .int()
    .min(1)
    .max(9)
    .prefault(6)
    .meta({ description: 'gzip level (1 fastest … 9 smallest).' }),
  brotliQuality: z
    .number()
    .int()
    .min(0)
    .max(11)
    .prefault(4)
    .meta({ description: 'Brotli quality on the fly (0 … 11); 4–5 is the usual trade of speed and size.' }),
  zstdLevel: z.number().int().min(1).max(19).prefault(3).meta({ description: 'zstd level (1 … 19).' }),
});

export const faultInjectionSchema = z.strictObject({
  delay: z
    .strictObject({
      percent: z.number().min(0).max(100).meta({ description: 'Share of requests delayed, in percent.' }),
      duration: duration.prefault('200ms').meta({ description: 'How long each is delayed.' }),
    })
    .optional()
    .meta({ description: 'Delay some requests before they go upstream.' }),
  abort: z
    .strictObject({
      percent: z
        .number()
        .min(0)
        .max(100)
        .meta({ description: 'Share of requests answered with status, in percent.' }),
      status: httpStatus.prefault(503).meta({ description: 'The status they get.' }),
    })
    .optional()
    .meta({ description: 'Answer some requests with an error instead of forwarding them.' }),
  allowHeader: z.boolean().prefault(false).meta({
    description:
      'Let a request choose its fault with x-gatehouse-fault: abort=503, delay=200ms (for targeted tests). Off: the header is ignored and removed.',
  }),
});

export const basicAuthSchema = z.strictObject({
  realm: z
    .string()
    .regex(/^[^"\\\r\n]*$/, 'a realm has no quotes, backslashes or line breaks')
    .prefault('Restricted')
    .meta({ description: 'The realm in WWW-Authenticate.' }),
  usersFile: z.string().meta({
    description:
      'An htpasswd file: user:hash lines with bcrypt ($2y$, htpasswd -B), SHA-256-crypt ($5$) or SHA-512-crypt ($6$) hashes. Reloaded when it changes.',
  }),
  cacheTtl: duration.prefault('1m').meta({
    description: 'How long a verified user:password is remembered, so a hash is not computed per request.',
  }),
  headerUser: headerName
    .optional()
    .meta({ description: 'Send the authenticated user name upstream in this header.' }),
});

const stringOrList = z
  .union([z.string(), z.array(z.string()).min(1)])
  .transform((v) => (Array.isArray(v) ? v : [v]));

export const jwtSchema = z.strictObject({
  jwksUrl: z
    .url({ protocol: /^https?$/ })
    .optional()
    .meta({
      description:
        'Where the signing keys are (JWKS). Cached; an unknown kid triggers one refetch (rate-limited).',
    }),
  keyFile: z.string().optional().meta({
    description: 'A local public key (PEM, or a JWK / JWKS JSON file) instead of jwksUrl.',
  }),
  issuer: stringOrList.optional().meta({ description: 'Accepted iss values. Default: any.' }),
  audience: stringOrList.optional().meta({ description: 'Accepted aud values. Default: any.' }),
  algorithms: z
    .array(z.enum(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']))
    .min(1)
    .prefault(['RS256', 'PS256', 'ES256', 'EdDSA'])
    .meta({ description: 'Accepted signature algorithms (asymmetric only: no none, no HS*).' }),
  clockSkew: duration.prefault('30s').meta({ description: 'Tolerance for exp and nbf.' }),
  cookie: z
    .string()
    .optional()
    .meta({ description: 'Also read the token from this cookie (after Authorization: Bearer).' }),
  claimsToHeaders: z.record(z.string(), headerName).prefault({}).meta({
    description:
      'Claim → upstream header (sub: x-user-id). These headers are always removed from the client request first.',
  }),
  jwksCacheTtl: duration
    .prefault('10m')
    .meta({ description: 'How long fetched keys are used before a refetch.' }),
});

export const forwardAuthSchema = z.strictObject({
  url: z
    .url({ protocol: /^https?$/ })
    .meta({ description: 'The auth service; 2xx lets the request through.' }),
  requestHeaders: z.array(headerName).prefault(['authorization', 'cookie']).meta({
    description:
      'Client headers sent to the auth service (besides X-Forwarded-Method, -Uri, -For, -Proto, -Host).',
  }),
  copyHeaders: z.array(headerName).prefault([]).meta({
    description:
      'Headers of the auth service’s 2xx answer copied to the upstream request (removed from the client’s first).',
  }),
  timeout: duration.prefault('2s').meta({ description: 'No answer in time: 503 (fail closed).' }),
});

export const apiKeySchema = z.strictObject({
  header: headerName
    .optional()
    .meta({ description: 'The header carrying the key. Default: x-api-key when query is unset.' }),
  query: z
    .string()
    .optional()
    .meta({ description: 'A query parameter carrying the key (removed before forwarding).' }),
  keys: z
    .array(
      z.strictObject({
        name: z.string().meta({ description: 'Shown in the access log and sent upstream (headerName).' }),
        sha256: z
          .string()
          .regex(/^[0-9a-f]{64}$/i, 'expected the key’s SHA-256 in hex')
          .meta({ description: 'SHA-256 of the key, hex (echo -n KEY | sha256sum).' }),
      }),
    )
    .min(1)
    .meta({ description: 'Accepted keys, stored hashed.' }),
  headerName: headerName.optional().meta({ description: 'Send the key’s name upstream in this header.' }),
});

export const wafSchema = z.strictObject({
  mode: z.enum(['block', 'detect']).prefault('block').meta({
    description:
      'block: refuse with 403; detect: log and count, add x-gatehouse-waf to the upstream request, let it through.',
  }),
  paranoia: z.number().int().min(1).max(4).prefault(1).meta({
    description:
      'Rule set depth: 1 catches clear attacks with few false positives; higher catches more and misfires more.',
  }),
  threshold: z.number().int().positive().prefault(5).meta({
    description: 'Anomaly score at which a request is blocked (a critical match scores 5).',
  }),
  inspectBody: size.prefault('64kb').meta({
    description: 'Request body bytes inspected (url-encoded, JSON, multipart); 0: bodies are not inspected.',
  }),
  exclusions: z
    .array(
      z.strictObject({
        rule: z
          .string()
          .refine(
            (r) => (RULE_CLASSES as readonly string[]).includes(r) || ruleIndex(r) >= 0,
            'not a WAF rule id or class (docs/waf.md lists them: sqli-001, ..., or sqli, xss, traversal, rce, protocol)',
          )
          .meta({ description: 'A rule id, or a class (sqli, xss, traversal, rce, protocol).' }),
        paths: z
          .array(z.string())
          .optional()
          .meta({ description: 'Path prefixes it applies to. Default: all.' }),
        parameters: z.array(z.string()).optional().meta({
          description:
            'Query, form or JSON field names (and cookie:NAME, header:NAME) it applies to. Default: all.',
        }),
      }),
    )
    .prefault([])
    .meta({ description: 'Rules turned off where they misfire.' }),
});

export const corsSchema = z
  .strictObject({
    origins: z.array(z.string()).min(1).meta({
      description:
        'Allowed origins, exact (https://app.example.com), or "*" for any (never with credentials).',
    }),
    methods: z
      .array(z.string().regex(/^[A-Z]+$/))
      .prefault(['GET', 'HEAD', 'POST'])
      .meta({ description: 'Allowed methods.' }),
    headers: z
      .array(headerName)
      .prefault([])
      .meta({ description: 'Request headers allowed beyond the CORS-safelisted ones.' }),
    exposeHeaders: z
      .array(headerName)
      .prefault([])
      .meta({ description: 'Response headers scripts may read.' }),
    credentials: z
      .boolean()
      .prefault(false)
      .meta({ description: 'Allow cookies and Authorization (Access-Control-Allow-Credentials).' }),
    maxAge: duration.prefault('10m').meta({ description: 'How long browsers may cache a preflight answer.' }),
  })
  .refine((c) => !(c.credentials && c.origins.includes('*')), {
    message: 'origins: "*" cannot be used with credentials (browsers refuse it): list the origins',
    path: ['origins'],
  });

export const securityHeadersSchema = z.strictObject({
  preset: z.enum(['strict', 'basic']).prefault('strict').meta({
    description:
      'strict: HSTS 1 year with subdomains, nosniff, X-Frame-Options DENY and CSP frame-ancestors none, Referrer-Policy no-referrer; basic: nosniff, SAMEORIGIN, strict-origin-when-cross-origin, no HSTS.',
  }),
  hsts: z
    .strictObject({
      maxAge: duration.prefault('8760h').meta({
        description:
          'How long browsers remember to use HTTPS (max-age); 0 sends no Strict-Transport-Security.',
      }),
      includeSubDomains: z
        .boolean()
        .prefault(true)
        .meta({ description: 'Also for every subdomain (includeSubDomains).' }),
      preload: z
        .boolean()
        .prefault(false)
        .meta({ description: 'Ask to be on browsers’ preload lists (preload).' }),
    })
    .optional()
    .meta({ description: 'Override the preset’s Strict-Transport-Security (sent on HTTPS only).' }),
  frameOptions: z
    .enum(['DENY', 'SAMEORIGIN', 'none'])
    .optional()
    .meta({ description: 'Override X-Frame-Options (none: not sent).' }),
  contentSecurityPolicy: z
    .string()
    .optional()
    .meta({ description: 'A Content-Security-Policy to set (none by default beyond frame-ancestors).' }),
  referrerPolicy: z.string().optional().meta({ description: 'Override Referrer-Policy.' }),
  removeHeaders: z.array(headerName).prefault(['server', 'x-powered-by', 'x-aspnet-version']).meta({
    description: 'Removed from upstream answers.',
  }),
});

export const MIDDLEWARE_KINDS = [
  'rateLimit',
  'headers',
  'ipFilter',
  'cache',
  'compress',
  'faultInjection',
  'basicAuth',
  'jwt',
  'forwardAuth',
  'apiKey',
  'waf',
  'cors',
  'securityHeaders',
] as const;

export const middlewareSchema = z
  .strictObject({
    rateLimit: rateLimitSchema
      .optional()
      .meta({ description: 'Token bucket per process; a refused request gets 429 rate_limited.' }),
    headers: headersSchema
      .optional()
      .meta({ description: 'Set, add or remove request and response headers.' }),
    ipFilter: ipFilterSchema
      .optional()
      .meta({ description: 'Allow or deny by client address (after trusted-proxy resolution).' }),
    cache: cacheSchema.optional().meta({ description: 'An RFC 9111 shared cache (docs/caching.md).' }),
    basicAuth: basicAuthSchema
      .optional()
      .meta({ description: 'HTTP Basic authentication from an htpasswd file (docs/security.md).' }),
    jwt: jwtSchema.optional().meta({ description: 'Bearer JWT verification with JWKS (docs/security.md).' }),
    forwardAuth: forwardAuthSchema
      .optional()
      .meta({ description: 'Ask an auth service about each request (docs/security.md).' }),
    apiKey: apiKeySchema
      .optional()
      .meta({ description: 'API keys in a header or query parameter (docs/security.md).' }),
    waf: wafSchema
      .optional()
      .meta({ description: 'A web application firewall with anomaly scoring (docs/waf.md).' }),
    cors: corsSchema
      .optional()
      .meta({ description: 'CORS: preflights answered at the edge (docs/security.md).' }),
    securityHeaders: securityHeadersSchema.optional().meta({
      description:
        'HSTS, nosniff, frame options, referrer policy; server banners removed (docs/security.md).',
    }),
    faultInjection: faultInjectionSchema
      .optional()
      .meta({ description: 'Delay or abort a share of requests (chaos testing; docs/traffic.md).' }),
    compress: compressSchema.optional().meta({
      description: 'Compress responses with zstd, brotli or gzip by Accept-Encoding (docs/compression.md).',
    }),
  })
  .refine((m) => Object.keys(m).length === 1, {
    message: `a middleware has exactly one kind: ${MIDDLEWARE_KINDS.join(', ')}`,
  })
  .meta({
    description:
      'A middleware: exactly one kind: rateLimit, headers, ipFilter, cache, compress, faultInjection, basicAuth, jwt, forwardAuth, apiKey, waf, cors or securityHeaders.',
  });

// ---------------------------------------------------------------- routes
const stringList = z
  .union([z.string(), z.array(z.string()).min(1)])
  .transform((v) => (Array.isArray(v) ? v : [v]));

export const matchSchema = z.strictObject({
  hosts: stringList.optional().meta({
    description:
      'A name or a list: exact (api.example.com) or *.example.com (any subdomain at any depth, not example.com itself). Case-insensitive; the port is ignored. Default: any host.',
  }),
  sni: stringList.optional().meta({
    description:
      'TLS server names (SNI) the client asked for: exact or *. wildcards. Only requests on TLS listeners have one.',
  }),
  path: z.string().startsWith('/', 'a path starts with "/"').optional().meta({ description: 'Exact path.' }),
  pathPrefix: z.string().startsWith('/', 'a path prefix starts with "/"').optional().meta({
    description:
      'Prefix on a segment boundary: /api matches /api and /api/x, never /apix. No path condition is the prefix /.',
  }),
  pathRegex: userRegex.optional().meta({
    description:
      'A regular expression tested against the path. It must run on V8’s linear-time engine: no backreferences, lookaheads, modifier groups or counted repeats above 16.',
  }),
  methods: z
    .array(z.string().regex(/^[A-Z]+$/, 'methods are upper case, e.g. GET'))
    .min(1)
    .optional()
    .meta({ description: 'Methods, upper case, e.g. [GET, HEAD]. Default: any method.' }),
  headers: z
    .record(headerName, z.string())
    .optional()
    .meta({ description: 'Header → exact value, or "*" for present. All must match.' }),
  query: z
    .record(z.string(), z.string())
    .optional()
    .meta({ description: 'Query parameter → exact value, or "*" for present. All must match.' }),
  cookies: z
    .record(z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'not a valid cookie name'), z.string())
    .optional()
    .meta({
      description: 'Cookie → exact value, or "*" for present. All must match (opt-in canaries: beta=1).',
    }),
  geo: z
    .strictObject({
      countries: z
        .array(z.string().regex(/^[A-Z]{2}$/, 'expected an ISO 3166-1 alpha-2 code such as DE'))
        .min(1)
        .optional()
        .meta({ description: 'ISO 3166-1 country codes (DE, AT, CH) of the client address.' }),
      continents: z
        .array(z.enum(['AF', 'AN', 'AS', 'EU', 'NA', 'OC', 'SA']))
        .min(1)
        .optional()
        .meta({ description: 'Continent codes (AF, AN, AS, EU, NA, OC, SA) of the client address.' }),
    })
    .refine(
      (g) => g.countries !== undefined || g.continents !== undefined,
      'geo needs countries or continents',
    )
    .optional()
    .meta({
      description:
        'The client address (after trusted-proxy resolution) looked up in the geoip database: any listed country or continent matches. Needs geoip.',
    }),
});

const template = z.string().meta({
  description:
    'Text with placeholders: {path}, {query}, {host}, {scheme}, {method}, {uri}, {client.ip}, {request.id}, {route}, {match.N} (a pathRegex capture), {geo.country}, {geo.continent}, {time.msec}, {time.iso}, {header.<name>}, {cookie.<name>}.',
});

export const errorPageSchema = z.strictObject({
  statuses: z.array(httpStatus).min(1).meta({ description: 'The statuses this page is shown for.' }),
  file: z.string().meta({
    description:
      'An HTML file (read at load); {status}, {reason} and {request.id} in it are replaced per answer.',
  }),
  intercept: z.boolean().prefault(false).meta({
    description:
      'Also replace upstream answers of these statuses (their body is dropped). Off: only Gatehouse’s own answers.',
  }),
});

export const staticSchema = z.strictObject({
  root: z.string().meta({ description: 'The directory served (resolved at load; it must exist).' }),
  index: z
    .union([z.string().regex(/^[^/\\]+$/, 'a file name, without a path'), z.literal(false)])
    .prefault('index.html')
    .meta({
      description: 'The file served for a directory; false: none (a directory is 404, never listed).',
    }),
  precompressed: z.boolean().prefault(false).meta({
    description: 'Serve file.br, file.zst or file.gz next to the file when the client accepts that encoding.',
  }),
  spaFallback: z.boolean().prefault(false).meta({
    description:
      'A missing path without a file extension is answered with the root’s index file (single-page apps).',
  }),
  dotfiles: z.boolean().prefault(false).meta({
    description: 'Serve names starting with "." (except .well-known, always served). Off: 404.',
  }),
  maxAge: duration.optional().meta({ description: 'Cache-Control: max-age sent with files. Default: none.' }),
});

export const mirrorSchema = z.strictObject({
  upstream: z.string().meta({ description: 'Name from upstreams: where the copies go.' }),
  sample: z.number().min(0).max(1).prefault(1).meta({ description: 'Fraction of requests copied (0 … 1).' }),
  maxBody: size.prefault('64kb').meta({
    description: 'Requests with a larger body (or a body of unknown length) are not copied.',
  }),
  maxInflight: z.number().int().positive().prefault(64).meta({
    description:
      'Copies under way at most; beyond it a copy is dropped and counted, never queued behind the client.',
  }),
  timeout: duration.prefault('10s').meta({ description: 'A copy’s answer must be complete within this.' }),
  compare: z
    .strictObject({
      headers: z
        .array(headerName)
        .prefault(['content-type', 'location', 'cache-control'])
        .meta({ description: 'Response headers compared.' }),
      ignoreHeaders: z.array(headerName).prefault([]).meta({ description: 'Headers never compared.' }),
      body: z.enum(['hash', 'json', 'none']).prefault('json').meta({
        description:
          'hash: byte-exact; json: JSON-aware when both are JSON (key order ignored, ignoreJsonFields dropped), else bytes; none: status and headers only.',
      }),
      ignoreJsonFields: z.array(z.string()).prefault([]).meta({
        description:
          'JSON fields ignored at any depth (requestTime), or a dotted path from the top (meta.took).',
      }),
      maxBody: size
        .prefault('1mb')
        .meta({ description: 'Bodies larger than this are compared by length only.' }),
      keep: z
        .number()
        .int()
        .positive()
        .prefault(200)
        .meta({ description: 'Latest differences kept for the admin API.' }),
    })
    .optional()
    .meta({ description: 'Compare the mirror’s answer with the client’s; record every difference.' }),
});

export const routeSchema = z.strictObject({
  name: name.meta({ description: 'Unique; shown in the access log and by gatehouse explain.' }),
  listeners: z
    .array(z.string())
    .min(1)
    .optional()
    .meta({ description: 'Names of the listeners this route is served on. Default: every listener.' }),
  match: matchSchema
    .prefault({})
    .meta({ description: 'Conditions a request must meet, all of them; none matches every request.' }),
  priority: z.number().int().prefault(0).meta({
    description: 'Higher is tried first; ties are broken by specificity, then by order in the file.',
  }),
  stripPrefix: z.boolean().prefault(false).meta({
    description:
      'Remove the matched pathPrefix before forwarding (/api/users → /users). Needs match.pathPrefix.',
  }),
  allowEncodedSlashes: z.boolean().prefault(false).meta({
    description:
      'Forward paths holding an encoded slash (%2F) or backslash (%5C) as sent, for origins that need them. Off: such requests get 400, so an origin that decodes them cannot be led outside the matched prefix.',
  }),
  rewrite: z
    .strictObject({
      regex: userRegex.meta({
        description: 'Regular expression on the path, under the same linear-time rules as match.pathRegex.',
      }),
      replacement: z.string().meta({ description: 'The new path; $1 refers to the first capture group.' }),
    })
    .optional()
    .meta({ description: 'Rewrite the path after stripPrefix, by regex; the query is kept.' }),
  middlewares: z.array(z.string()).prefault([]).meta({
    description: 'Names from middlewares, applied in this order to requests (reverse order to responses).',
  }),
  upstream: z.string().optional().meta({
    description:
      'Name from upstreams. A route has exactly one of upstream, split, static, redirect and respond.',
  }),
  split: z
    .array(
      z.strictObject({
        upstream: z.string().meta({ description: 'Name from upstreams.' }),
        weight: z
          .number()
          .min(0)
          .meta({ description: 'Share of requests, relative to the others (0: none).' }),
      }),
    )
    .min(1)
    .optional()
    .meta({
      description:
        'Requests divided between upstreams by weight (canaries, A/B), smooth within any short window; weights can change at run time through the admin API.',
    }),
  sticky: z
    .strictObject({
      cookie: z
        .string()
        .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'not a valid cookie name')
        .prefault('gh_split')
        .meta({ description: 'The cookie that keeps a client on its side.' }),
      maxAge: duration.prefault('24h').meta({ description: 'How long the cookie lasts.' }),
      secret: z.string().min(16, 'at least 16 characters').optional().meta({
        description:
          'Key for the cookie’s signature (HMAC-SHA256), the same on every node; default: random per process (sides are kept until a restart).',
      }),
      allowOverride: z.boolean().prefault(false).meta({
        description:
          'Accept an unsigned cookie naming a side (a client may pick its side). Off: only signed.',
      }),
    })
    .optional()
    .meta({
      description: 'Keep each client on the side of the split it first got, by a signed cookie. Needs split.',
    }),
  mirror: mirrorSchema.optional().meta({
    description: 'Copy sampled requests to another upstream, off the client’s path, and compare the answers.',
  }),
  static: staticSchema.optional().meta({ description: 'Serve files from a directory (docs/static.md).' }),
  redirect: z
    .strictObject({
      to: template.meta({
        description: 'The Location, with placeholders: "https://blog.example.com{path}{query}".',
      }),
      status: z
        .union([z.literal(301), z.literal(302), z.literal(303), z.literal(307), z.literal(308)])
        .prefault(302)
        .meta({ description: '301, 302, 303, 307 or 308.' }),
    })
    .optional()
    .meta({ description: 'Answer with a redirect, without a backend.' }),
  respond: z
    .strictObject({
      status: httpStatus.prefault(200).meta({ description: 'The status.' }),
      body: template.optional().meta({ description: 'The body, with placeholders. Default: none.' }),
      contentType: z
        .string()
        .prefault('text/plain; charset=utf-8')
        .meta({ description: 'Its Content-Type.' }),
      headers: z
        .record(headerName, z.string())
        .optional()
        .meta({ description: 'More response headers (placeholders allowed).' }),
    })
    .optional()
    .meta({ description: 'Answer with a fixed response, without a backend.' }),
  errorPages: z
    .array(errorPageSchema)
    .optional()
    .meta({ description: 'Error pages for this route, ahead of the top-level errorPages.' }),
  maxRequestBody: size
    .optional()
    .meta({ description: 'Body size limit for this route. Default: limits.maxRequestBody.' }),
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
    )
    .meta({
      description:
        'http://host:port, https://host:port or h2c://host:port (cleartext HTTP/2), without a path.',
    }),
  weight: z
    .number()
    .int()
    .min(1)
    .max(1000)
    .prefault(1)
    .meta({ description: 'Share of requests relative to the other targets, 1–1000.' }),
  backup: z
    .boolean()
    .prefault(false)
    .meta({ description: 'Used only while every primary (non-backup) target is unavailable.' }),
  drain: z.boolean().prefault(false).meta({
    description: 'Takes no new requests; requests already on it finish. Health checks keep running.',
  }),
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
  type: z.enum(['http', 'tcp']).prefault('http').meta({
    description:
      'http sends a request on a connection of its own (never queued behind traffic); tcp only opens a connection.',
  }),
  method: z
    .string()
    .regex(/^[A-Z]+$/, 'methods are upper case, e.g. GET')
    .prefault('GET')
    .meta({ description: 'HTTP method of the probe.' }),
  path: z.string().startsWith('/').prefault('/').meta({ description: 'Path of the probe.' }),
  port: z
    .number()
    .int()
    .min(1)
    .max(65535)
    .optional()
    .meta({ description: 'Probe this port instead of the target’s (a separate health port).' }),
  headers: z
    .record(headerName, z.string())
    .prefault({})
    .meta({ description: 'Sent with every probe; Host here replaces the target’s host:port.' }),
  interval: duration.prefault('5s').meta({ description: 'Time between probes (plus up to 10% jitter).' }),
  timeout: duration.prefault('2s').meta({ description: 'A probe slower than this fails.' }),
  healthyAfter: z.number().int().min(1).prefault(2).meta({
    description: 'Consecutive successes that bring a down target back (and end an ejection early).',
  }),
  unhealthyAfter: z
    .number()
    .int()
    .min(1)
    .prefault(2)
    .meta({ description: 'Consecutive failures that take a target out.' }),
  expectStatus: statusList
    .prefault(['2xx', '3xx'])
    .meta({ description: 'Statuses that count as healthy: 200, "200-299" or 2xx.' }),
  expectBody: userRegex.optional().meta({
    description:
      'A regular expression the first 64 KiB of the body must match, under the same linear-time rules as match.pathRegex.',
  }),
});

export const outlierDetectionSchema = z.strictObject({
  enabled: z
    .boolean()
    .prefault(true)
    .meta({ description: 'Passive health: real traffic ejects targets that keep failing.' }),
  consecutiveFailures: z.number().int().min(1).prefault(5).meta({
    description:
      'Consecutive failed tries (connect failure, reset, timeout, or a status in statuses) that eject a target.',
  }),
  statuses: statusList.prefault(['502-504']).meta({ description: 'Response statuses counted as failures.' }),
  baseEjectionTime: duration.prefault('30s').meta({
    description:
      'The first ejection lasts this long, the second twice as long, and so on; forgiven after maxEjectionTime without one.',
  }),
  maxEjectionTime: duration.prefault('5m').meta({ description: 'Longest ejection.' }),
  maxEjectionPercent: z.number().int().min(0).max(100).prefault(50).meta({
    description:
      'At most this share of the upstream’s targets is ejected at once (at least one when it has two or more).',
  }),
});

export const RETRY_ON = ['connect-failure', 'reset', 'timeout'] as const;

export const retrySchema = z.strictObject({
  attempts: z.number().int().min(1).max(10).prefault(3).meta({
    description:
      'Tries in all, the first included; each retry goes to a target not tried yet. 1 turns retries off.',
  }),
  on: z.array(z.enum(RETRY_ON)).prefault(['connect-failure', 'reset', 'timeout']).meta({
    description:
      'Failures that are retried: connect-failure (nothing reached the target), reset (closed before any response byte), timeout (no response headers within perTryTimeout).',
  }),
  statuses: statusList.prefault([]).meta({
    description: 'Response statuses that are retried; the response is dropped unless it is the last try.',
  }),
  nonIdempotent: z.boolean().prefault(false).meta({
    description: 'Also retry POST, PATCH and other non-idempotent methods after a reset, timeout or status.',
  }),
  perTryTimeout: duration.optional().meta({
    description:
      'How long one try may wait for response headers; at most timeouts.response. Default: timeouts.response.',
  }),
  budget: z
    .strictObject({
      percent: z.number().min(0).max(100).prefault(20).meta({
        description: 'Retries at most this share of the upstream’s requests over the window...',
      }),
      minRetries: z
        .number()
        .int()
        .min(0)
        .prefault(10)
        .meta({ description: '...or this many, when that is more.' }),
      window: duration.prefault('10s').meta({ description: 'The sliding window of the budget.' }),
    })
    .prefault({})
    .meta({
      description:
        'Caps retries so they cannot multiply an outage. Connect failures are not counted: nothing reached a target.',
    }),
});

export const circuitBreakerSchema = z.strictObject({
  maxPending: z.number().int().min(0).prefault(1024).meta({
    description: 'Requests waiting for a free connection, at most; more get a fast 503 upstream_overflow.',
  }),
  maxRequests: z.number().int().min(1).optional().meta({
    description:
      'Requests in flight to the upstream at most; more get 503 upstream_overflow. Default: no limit beyond connections and pending.',
  }),
});

export const hashKeySchema = z
  .string()
  .regex(
    /^(path|clientIp|(header|cookie|query):.+)$/,
    'expected path, clientIp, header:<name>, cookie:<name> or query:<name>',
  );

export const upstreamSchema = z
  .strictObject({
    loadBalancer: z
      .enum(BALANCERS)
      .prefault('roundRobin')
      .meta({ description: 'How a target is chosen for each request.' }),
    hashKey: hashKeySchema.optional().meta({
      description:
        'What consistentHash hashes: path, clientIp, header:<name>, cookie:<name> or query:<name>. Default: path.',
    }),
    targets: z
      .array(targetSchema)
      .min(1, 'an upstream needs at least one target')
      .meta({ description: 'The servers that take the requests.' }),
    maxConnectionsPerTarget: z.number().int().positive().prefault(256).meta({
      description:
        'Open connections to one target at most; requests beyond it wait (see circuitBreaker.maxPending).',
    }),
    passHostHeader: z.boolean().prefault(true).meta({
      description: 'Send the client’s Host header upstream (true) or the target’s host:port (false).',
    }),
    timeouts: z
      .strictObject({
        connect: duration.prefault('5s').meta({
          description: 'TCP connect; exceeded: 504 upstream_connect_timeout (after other targets).',
        }),
        response: duration.prefault('60s').meta({
          description: 'From the request sent to the response headers received, over all tries together.',
        }),
        idle: duration
          .prefault('60s')
          .meta({ description: 'Longest silence while the response body streams; 0 turns it off.' }),
        keepAlive: duration.prefault('4s').meta({
          description: 'How long an unused pooled connection stays open; keep it below the target’s own.',
        }),
        tunnelIdle: duration.prefault('5m').meta({
          description: 'A WebSocket with no traffic either way for this long is closed; 0 turns it off.',
        }),
        tunnelMaxLifetime: duration.prefault('0s').meta({
          description: 'A WebSocket is closed after this long whatever its traffic; 0 is no limit.',
        }),
      })
      .prefault({})
      .meta({ description: 'Time limits on connections and requests to the targets.' }),
    tls: z
      .strictObject({
        caFile: z.string().optional().meta({
          description: 'CA certificates (PEM) to verify targets against. Default: the system store.',
        }),
        servername: z.string().optional().meta({
          description: 'The name sent by SNI and verified in the certificate. Default: the target’s host.',
        }),
        certFile: z
          .string()
          .optional()
          .meta({ description: 'Client certificate (PEM) for targets that require mTLS; with keyFile.' }),
        keyFile: z.string().optional().meta({ description: 'Key of certFile (PEM).' }),
        insecureSkipVerify: z.boolean().prefault(false).meta({
          description:
            'Do not verify the target’s certificate. Only for testing: anyone on the path can read and change the traffic.',
        }),
      })
      .prefault({})
      .meta({
        description: 'For https:// targets: whom to trust, the name to verify, a client certificate.',
      }),
    http2: z.boolean().prefault(true).meta({
      description:
        'Offer HTTP/2 to https:// targets by ALPN (they may still answer HTTP/1.1); h2c:// always is.',
    }),
    http1Client: z.enum(['gatehouse', 'undici']).prefault('gatehouse').meta({
      description:
        'The client for http:// targets: gatehouse (our own keep-alive pool on raw sockets, the fast one) or undici. https:// and h2c:// targets always use undici.',
    }),
    healthCheck: healthCheckSchema.optional().meta({
      description:
        'Active checks, one probe loop per target. Without it targets are up unless outlier detection ejects them.',
    }),
    outlierDetection: outlierDetectionSchema
      .prefault({})
      .meta({ description: 'Passive health: eject targets that keep failing real requests.' }),
    retry: retrySchema
      .prefault({})
      .meta({ description: 'Which failed tries are tried again, and how often.' }),
    circuitBreaker: circuitBreakerSchema
      .prefault({})
      .meta({ description: 'Bounds on the requests queued and in flight, so overload fails fast.' }),
    slowStart: duration.prefault('0s').meta({
      description:
        'A recovered or added target’s weight ramps from 10% to 100% over this window; 0 turns it off.',
    }),
  })
  .meta({ description: 'An upstream: its targets and how requests reach them.' });

// ---------------------------------------------------------------- top level
export const limitsSchema = z.strictObject({
  maxRequestBody: size
    .prefault('10mb')
    .meta({ description: 'Larger request bodies get 413 body_too_large; a route may override it.' }),
  maxRequestHeaders: size
    .prefault('32kb')
    .meta({ description: 'Request heads larger than this get 431 headers_too_large.' }),
  maxUriLength: size.prefault('8kb').meta({ description: 'Longer request targets get 414 uri_too_long.' }),
  headerTimeout: duration
    .prefault('10s')
    .meta({ description: 'A client must send its whole request head within this time, or gets 408.' }),
  keepAliveTimeout: duration
    .prefault('60s')
    .meta({ description: 'An idle client connection is closed after this.' }),
  bodyTimeout: duration
    .prefault('60s')
    .meta({ description: 'Longest silence while a request body is being received (408); 0 turns it off.' }),
  maxConnections: z.number().int().nonnegative().prefault(0).meta({
    description:
      'Open client connections per listener at most; more are closed at once and counted. 0: no cap.',
  }),
  maxConnectionsPerClient: z.number().int().nonnegative().prefault(0).meta({
    description:
      'Open connections per client address (the TCP peer) per listener at most; more are closed at once and counted. 0: no cap.',
  }),
  minRequestBodyRate: z
    .string()
    .regex(/^(\d+(?:\.\d+)?)(b|kb|mb)\/s$|^0$/i, 'expected a rate such as 1kb/s, or 0 for none')
    .transform((v) => (v === '0' ? 0 : (parseSize(v.slice(0, -2)) as number)))
    .prefault('0')
    .meta({
      description:
        'After minRequestBodyRateGrace, a request body arriving slower than this (bytes per second, averaged) gets 408. 0: no minimum (bodyTimeout still limits silence).',
    }),
  minRequestBodyRateGrace: duration
    .prefault('5s')
    .meta({ description: 'How long a body may take before minRequestBodyRate is enforced.' }),
  tlsHandshakeTimeout: duration.prefault('10s').meta({
    description: 'A TLS client must finish its handshake within this, or the connection is closed.',
  }),
  requestBuffer: size.prefault('64kb').meta({
    description:
      'A request body with a Content-Length up to this is read whole before an upstream connection is taken (as nginx’s proxy_request_buffering), so slow uploads hold no upstream connection; bodies of unknown length (chunked, streams) are never held back. 0: off.',
  }),
  upstreamConnectionsPerClient: z.number().int().nonnegative().prefault(0).meta({
    description:
      'Requests one client address may have in flight upstream at once (per upstream); more get 429. Keeps slow clients from holding every upstream connection. 0: no cap.',
  }),
  ban: z
    .strictObject({
      after: z.number().int().positive().prefault(20).meta({
        description:
          'Offences (limit refusals, WAF blocks, failed logins) within window before a client is banned.',
      }),
      window: duration.prefault('1m').meta({ description: 'The window offences are counted in.' }),
      duration: duration.prefault('1m').meta({ description: 'The first ban; each further ban doubles it.' }),
      maxDuration: duration.prefault('24h').meta({ description: 'The longest ban.' }),
      allow: cidrList.prefault([]).meta({ description: 'Addresses or CIDRs never banned.' }),
    })
    .optional()
    .meta({
      description:
        'Refuse clients that keep offending, for a growing period (as fail2ban); listed and lifted in the admin API. Off without this block.',
    }),
});

export const forwardingSchema = z.strictObject({
  trustedProxies: cidrList.prefault([]).meta({
    description:
      'Peers allowed to set X-Forwarded-For/-Proto/-Host and Forwarded (addresses or CIDRs); from anyone else these headers are replaced.',
  }),
  forwarded: z.boolean().prefault(false).meta({ description: 'Also send the RFC 7239 Forwarded header.' }),
  via: z
    .string()
    .regex(/^[A-Za-z0-9._-]+$/)
    .optional()
    .meta({
      description:
        'The Via pseudonym, also used to detect loops (508). Default: GATEHOUSE_VIA from the environment, else gatehouse-<random>.',
      reload: 'restart',
    }),
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
  'user',
  'userAgent',
  'referer',
] as const;

export const accessLogSchema = z.strictObject({
  enabled: z.boolean().prefault(true).meta({ description: 'Write one line per request.' }),
  path: z.string().prefault('stdout').meta({
    description: 'stdout, stderr or a file path (appended to; reopened on SIGUSR1 for log rotation).',
  }),
  format: z
    .enum(['json', 'combined', 'template'])
    .prefault('json')
    .meta({ description: 'json (one object per line), combined (nginx’s), or template.' }),
  fields: z.array(z.enum(ACCESS_LOG_FIELDS)).min(1).optional().meta({
    description:
      'For json: the fields, in order. Default: time, requestId, listener, clientIp, method, host, path, protocol, status, bytes, route, upstream, target, attempts, upstreamMs, durationMs, traceId (when tracing), reason (on errors), user (when an authentication middleware let the request in).',
  }),
  template: z.string().optional().meta({
    description:
      'For template: text with $field names, e.g. $clientIp "$request" $status $durationMs rid=$requestId.',
  }),
});

export const tracingSchema = z.strictObject({
  endpoint: z
    .string()
    .refine((u) => URL.canParse(u) && /^https?:$/.test(new URL(u).protocol), 'expected an http(s) URL')
    .meta({
      description: 'OTLP/HTTP traces endpoint of the collector, e.g. http://127.0.0.1:4318/v1/traces.',
    }),
  serviceName: z.string().prefault('gatehouse').meta({ description: 'service.name of the spans.' }),
  sampleRate: z.number().min(0).max(1).prefault(1).meta({
    description:
      'Share of new traces that are sampled; a request with a traceparent keeps its caller’s decision.',
  }),
  headers: z
    .record(headerName, z.string())
    .prefault({})
    .meta({ description: 'Sent with every export (a collector API key, for example).' }),
  maxBatch: z.number().int().min(1).prefault(512).meta({ description: 'Spans per export at most.' }),
  flushInterval: duration.prefault('1s').meta({ description: 'Longest wait before an export.' }),
});

export const ADMIN_TOKEN_MIN = 16;

export const adminSchema = z.strictObject({
  address: address.prefault('127.0.0.1:9901').meta({
    description:
      'Where the admin API listens. Keep it on loopback, or on a private network behind a firewall.',
  }),
  token: z
    .string()
    .refine(
      (t) => t.replace(/\s/g, '').length >= ADMIN_TOKEN_MIN,
      `too short: use at least ${ADMIN_TOKEN_MIN} characters other than spaces (e.g. openssl rand -hex 16)`,
    )
    .optional()
    .meta({
      description: `Required: every admin request carries it. At least ${ADMIN_TOKEN_MIN} characters other than spaces; write \${GATEHOUSE_ADMIN_TOKEN} to keep it out of the file.`,
    }),
});

export const configSchema = z.strictObject({
  $schema: z
    .string()
    .optional()
    .meta({ description: 'Ignored; lets a file name its JSON Schema for editors.', reload: 'hot' }),
  admin: adminSchema.optional().meta({
    description:
      'The admin listener: JSON API, Prometheus /metrics and the dashboard. Off without this block.',
    reload: 'restart',
  }),
  listeners: z
    .array(listenerSchema)
    .min(1, 'at least one listener is needed')
    .meta({ description: 'Where Gatehouse accepts connections; at least one.', reload: 'restart' }),
  routes: z.array(routeSchema).prefault([]).meta({
    description: 'Tried in precedence order (docs/routing.md); the first match wins. No match: 404.',
    reload: 'hot',
  }),
  middlewares: z
    .record(name, middlewareSchema)
    .prefault({})
    .meta({ description: 'Named middlewares that routes refer to.', reload: 'hot' }),
  upstreams: z
    .record(name, upstreamSchema)
    .prefault({})
    .meta({ description: 'Named groups of targets that routes send requests to.', reload: 'hot' }),
  limits: limitsSchema.prefault({}).meta({
    description: 'Limits on client connections and requests, bound to the listeners’ sockets.',
    reload: 'restart',
  }),
  forwarding: forwardingSchema.prefault({}).meta({
    description: 'The X-Forwarded-*, Forwarded and Via headers: whom to believe, what to send.',
    reload: 'hot',
  }),
  accessLog: accessLogSchema
    .prefault({})
    .meta({ description: 'One line per request, to stdout, stderr or a file.', reload: 'restart' }),
  tracing: tracingSchema.optional().meta({
    description: 'OpenTelemetry tracing over OTLP/HTTP (JSON); off without this block.',
    reload: 'restart',
  }),
  redis: z
    .strictObject({
      url: z
        .string()
        .regex(/^rediss?:\/\//, 'expected redis://host:port or rediss://')
        .meta({
          description:
            'The Redis server (redis:// or rediss://; a password in the URL is redacted in the admin API).',
        }),
      timeout: duration
        .prefault('100ms')
        .meta({ description: 'A decision Redis does not answer within this is a store error.' }),
      keyPrefix: z
        .string()
        .prefault('gatehouse:')
        .meta({ description: 'Prefix of every key Gatehouse writes.' }),
    })
    .optional()
    .meta({
      description: 'Shared state across processes and nodes (rateLimit store: redis).',
      reload: 'restart',
    }),
  geoip: z
    .strictObject({
      database: z.string().meta({
        description: 'A MaxMind DB file (GeoLite2-Country, GeoIP2-City, ...); reloaded when it changes.',
      }),
    })
    .optional()
    .meta({ description: 'Geo data for the geo matcher and {geo.*} placeholders.', reload: 'hot' }),
  errorPages: z
    .array(errorPageSchema)
    .prefault([])
    .meta({ description: 'Error pages for every route (a route’s own come first).', reload: 'hot' }),
  shutdownGracePeriod: duration.prefault('10s').meta({
    description: 'How long in-flight requests may take to finish after SIGTERM/SIGINT.',
    reload: 'hot',
  }),
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
export type CacheConfig = z.output<typeof cacheSchema>;
export type CompressConfig = z.output<typeof compressSchema>;
export type FaultInjectionConfig = z.output<typeof faultInjectionSchema>;
export type StaticConfig = z.output<typeof staticSchema>;
export type MirrorConfig = z.output<typeof mirrorSchema>;
export type ErrorPageConfig = z.output<typeof errorPageSchema>;
export type BasicAuthConfig = z.output<typeof basicAuthSchema>;
export type JwtConfig = z.output<typeof jwtSchema>;
export type ForwardAuthConfig = z.output<typeof forwardAuthSchema>;
export type ApiKeyConfig = z.output<typeof apiKeySchema>;
export type WafConfig = z.output<typeof wafSchema>;
export type CorsConfig = z.output<typeof corsSchema>;
export type SecurityHeadersConfig = z.output<typeof securityHeadersSchema>;
export type RedisConfig = z.output<typeof configSchema>['redis'];
export type LimitsConfig = z.output<typeof limitsSchema>;
export type BalancerName = (typeof BALANCERS)[number];

/**
 * JSON Schema (draft 2020-12) of the file as written, for editors (`gatehouse schema`). A key's
 * `reload: 'restart'` becomes a sentence of its description (JSON Schema has no keyword for it).
 */
export function jsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' });
  return {
    ...(reloadToText(schema) as Record<string, unknown>),
    $id: 'https://gatehouse.dev/gatehouse.schema.json',
    title: 'Gatehouse configuration',
  };
}

const RESTART_NOTE = 'Needs a restart: a reload (SIGHUP) keeps the running value.';

function reloadToText(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(reloadToText);
  if (node === null || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) if (k !== 'reload') out[k] = reloadToText(v);
  const reload = (node as { reload?: unknown }).reload;
  if (reload === 'restart')
    out.description =
      typeof out.description === 'string' ? `${out.description} ${RESTART_NOTE}` : RESTART_NOTE;
  return out;
}
