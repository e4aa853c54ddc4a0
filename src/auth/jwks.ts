// Where the jwt middleware finds its verification keys: a JWKS fetched by URL and kept fresh, or a
// local key file.
//
// The remote set is fetched with undici (the middleware's own Agent; no redirects, a body limit and
// a timeout), used for `ttl`, then refreshed in the background while the old keys keep answering.
// A token whose `kid` the set does not have triggers one refetch right away (keys rotate: a new
// signing key appears in the JWKS), then no other such refetch for UNKNOWN_KID_COOLDOWN_MS: a flood
// of tokens with made-up kids costs the JWKS server one request per cooldown, not one per token.
// Concurrent refetches share one request. A failed fetch keeps the keys already known and is
// retried after RETRY_MS; with no keys at all, verification fails with JwksUnavailable (the
// middleware answers 503, fail closed).
import { createPublicKey, type JsonWebKeyInput, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createLocalJWKSet, errors, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import type { Dispatcher } from 'undici';

export const UNKNOWN_KID_COOLDOWN_MS = 30_000;
export const RETRY_MS = 5_000;
export const FETCH_TIMEOUT_MS = 5_000;
export const MAX_JWKS_BYTES = 1024 * 1024;

export class JwksUnavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JwksUnavailable';
  }
}

type GetKey = (header: Parameters<JWTVerifyGetKey>[0], token: Parameters<JWTVerifyGetKey>[1]) => unknown;

export class RemoteKeySet {
  readonly url: string;
  readonly #origin: string;
  readonly #path: string;
  /** Fetches made (for tests and figures). */
  fetches = 0;
  readonly #dispatcher: Dispatcher;
  readonly #ttl: number;
  readonly #onError: (message: string) => void;
  #set: JWTVerifyGetKey | null = null;
  /** When the set should next be fetched (after its ttl, or RETRY_MS after a failure). */
  #nextFetch = 0;
  #lastUnknownKid = Number.NEGATIVE_INFINITY;
  #inflight: Promise<void> | null = null;
  #lastError = '';

  constructor(url: string, ttl: number, dispatcher: Dispatcher, onError: (message: string) => void) {
    this.url = url;
    const u = new URL(url);
    this.#origin = u.origin;
    this.#path = u.pathname + u.search;
    this.#ttl = ttl;
    this.#dispatcher = dispatcher;
    this.#onError = onError;
  }

  /** The key resolver for jose's jwtVerify. */
  readonly getKey: GetKey = async (header, token) => {
    let set = this.#set;
    if (set === null) {
      if (performance.now() >= this.#nextFetch) await this.refresh();
      set = this.#set;
      if (set === null) throw new JwksUnavailable(this.#lastError || 'no keys');
    } else if (performance.now() >= this.#nextFetch) void this.refresh();
    try {
      return await set(header, token);
    } catch (err) {
      if (!(err instanceof errors.JWKSNoMatchingKey)) throw err;
      // A set fetched meanwhile (by another request) is tried without fetching again.
      if (this.#set === set) {
        if (!this.#mayRefetch()) throw err;
        await this.refresh();
      }
      const next = this.#set;
      if (next === null || next === set) throw err;
      return next(header, token);
    }
  };

  /** Fetches the set now (joining a fetch under way). Never rejects: a failure keeps the old keys. */
  refresh(): Promise<void> {
    this.#inflight ??= this.#fetch().finally(() => {
      this.#inflight = null;
    });
    return this.#inflight;
  }

  /** An unknown kid may refetch: one fetch under way is joined; else one per cooldown. */
  #mayRefetch(): boolean {
    if (this.#inflight !== null) return true;
    const now = performance.now();
    if (now - this.#lastUnknownKid < UNKNOWN_KID_COOLDOWN_MS) return false;
    this.#lastUnknownKid = now;
    return true;
  }

  async #fetch(): Promise<void> {
    this.fetches++;
    try {
      const res = await this.#dispatcher.request({
        origin: this.#origin,
        path: this.#path,
        method: 'GET',
        headers: { accept: 'application/jwk-set+json, application/json' },
        signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
        headersTimeout: FETCH_TIMEOUT_MS,
        bodyTimeout: FETCH_TIMEOUT_MS,
      });
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of res.body) {
        size += (chunk as Buffer).length;
        if (size > MAX_JWKS_BYTES) {
          res.body.destroy();
          throw new Error(`larger than ${MAX_JWKS_BYTES} bytes`);
        }
        chunks.push(chunk as Buffer);
      }
      if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
      const json = JSON.parse(Buffer.concat(chunks).toString('utf8')) as JSONWebKeySet;
      this.#set = createLocalJWKSet(json);
      this.#nextFetch = performance.now() + this.#ttl;
      this.#lastError = '';
    } catch (err) {
      this.#nextFetch = performance.now() + RETRY_MS;
      const message = `cannot fetch ${this.url}: ${(err as Error).message}`;
      if (message !== this.#lastError) {
        this.#lastError = message;
        try {
          this.#onError(`${message}${this.#set === null ? '' : '; keeping the keys fetched before'}`);
        } catch {
          // A throwing reporter must not break verification.
        }
      }
    }
  }
}

/**
 * A local key file: a PEM public key, certificate or private key (its public half is used), a JWK
 * (JSON object with `kty`), or a JWKS (`{"keys": [...]}`, chosen from by kid). Symmetric keys are
 * refused: the middleware verifies asymmetric signatures only. Throws with the reason.
 */
export function loadLocalKey(path: string): KeyObject | JWTVerifyGetKey {
  const text = readFileSync(path, 'utf8');
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) {
    let json: unknown;
    try {
      json = JSON.parse(trimmed);
    } catch (err) {
      throw new Error(`${path}: not valid JSON (${(err as Error).message})`);
    }
    const obj = json as { keys?: unknown; kty?: unknown };
    if (Array.isArray(obj.keys)) {
      if (obj.keys.length === 0) throw new Error(`${path}: the key set is empty`);
      obj.keys.forEach((k, i) => {
        const key = k as { kty?: unknown; d?: unknown };
        if (key.kty === 'oct') throw new Error(`${path}: keys.${i} is a symmetric (oct) key`);
        if (key.d !== undefined) throw new Error(`${path}: keys.${i} is a private key; give the public one`);
        publicKey(key, `${path}: keys.${i}`);
      });
      return createLocalJWKSet(obj as JSONWebKeySet);
    }
    if (obj.kty === 'oct') throw new Error(`${path}: a symmetric (oct) key`);
    return publicKey(obj, path);
  }
  if (!trimmed.includes('-----BEGIN')) throw new Error(`${path}: neither PEM nor JSON (JWK / JWKS)`);
  try {
    return createPublicKey(trimmed);
  } catch (err) {
    throw new Error(`${path}: not a usable public key (${(err as Error).message})`);
  }
}

function publicKey(jwk: object, where: string): KeyObject {
  try {
    return createPublicKey({ key: jwk as JsonWebKeyInput['key'], format: 'jwk' });
  } catch (err) {
    throw new Error(`${where}: not a usable public key (${(err as Error).message})`);
  }
}
