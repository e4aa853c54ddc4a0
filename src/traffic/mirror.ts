// `mirror`: sampled copies of a route's requests to another upstream, off the client's path, and the
// answers compared. PLACEHOLDER: the interface the request path calls; the implementation is being
// written.
import type { MirrorConfig } from '../config/schema.ts';
import type { RequestContext, UpstreamRequest } from '../pipeline/context.ts';
import type { Responder } from '../pipeline/responder.ts';
import type { Upstream } from '../upstream/upstream.ts';

/** The running process's mirror figures and differences, by route name (kept across reloads). */
export class MirrorRegistry {}

export class Mirror {
  readonly route: string;
  readonly config: MirrorConfig;
  readonly upstream: Upstream;

  constructor(route: string, config: MirrorConfig, upstream: Upstream, _registry: MirrorRegistry | null) {
    this.route = route;
    this.config = config;
    this.upstream = upstream;
  }

  /**
   * Whether this request is copied: the sample, room under maxInflight, a body of known length up
   * to maxBody. Decided in the select stage, before the body is read; cheap.
   */
  wants(_ctx: RequestContext): boolean {
    return false;
  }

  /**
   * Sends the copy (the upstream request as built for the client's, with `body`: the request body
   * read whole, or null) and returns a filter around ctx.res that captures the client's answer for
   * the comparison, or null when compare is off. Never throws, never delays the client.
   */
  start(_ctx: RequestContext, _ureq: UpstreamRequest, _body: Buffer | null): Responder | null {
    return null;
  }
}
