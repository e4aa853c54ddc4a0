// What our HTTP/1.1 and HTTP/2 request objects share: a Readable carrying the request body, with
// IncomingMessage's `complete` and `setTimeout` (the body idle timeout the pipeline arms), and an
// abort that raises an error only to someone listening for it, as IncomingMessage does.
import { Readable } from 'node:stream';

export abstract class BodyStream extends Readable {
  /** The whole body has arrived. */
  complete = false;
  /** The body idle timer (setTimeout), refreshed by every chunk. */
  protected bodyTimer: NodeJS.Timeout | undefined = undefined;

  /** The body will not complete: the connection or stream failed, or the answer ended before it. */
  abortBody(err: Error): void {
    this.clearBodyTimer();
    if (this.complete || this.destroyed) return;
    this.destroy(this.listenerCount('error') > 0 ? err : undefined);
  }

  /** As IncomingMessage.setTimeout: `cb` when no body byte has arrived for `ms` (0 turns it off). */
  setTimeout(ms: number, cb?: () => void): this {
    this.clearBodyTimer();
    if (ms > 0 && cb !== undefined && !this.complete) {
      this.bodyTimer = setTimeout(cb, ms);
      this.bodyTimer.unref();
    }
    return this;
  }

  protected clearBodyTimer(): void {
    if (this.bodyTimer !== undefined) {
      clearTimeout(this.bodyTimer);
      this.bodyTimer = undefined;
    }
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    this.clearBodyTimer();
    cb(err);
  }
}
