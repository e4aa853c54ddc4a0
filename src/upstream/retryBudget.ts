// The retry budget: over a sliding window (10 one-second slots by default), retries may be at most
// `percent` of the requests the upstream received, or `minRetries` when that is more. This is the
// budget of Finagle and Linkerd rather than Envoy's (a share of the retries in flight right now):
// both cap what retries add during an outage (all targets failing: at most +percent load), but a
// window also absorbs the burst when one target dies holding many requests at once, which an
// in-flight share turns into failed requests (measured in bench/failover.ts: 5 of 15 at 16
// connections with Envoy's defaults).
const SLOTS = 10;

export class RetryBudget {
  readonly #requests = new Int32Array(SLOTS);
  readonly #retries = new Int32Array(SLOTS);
  readonly #slotMs: number;
  readonly #share: number;
  readonly #min: number;
  /** The slot (time / slotMs) last written. */
  #now = 0;

  constructor(percent: number, minRetries: number, windowMs: number) {
    this.#share = percent / 100;
    this.#min = minRetries;
    this.#slotMs = Math.max(1, windowMs / SLOTS);
  }

  /** Every request that reaches the upstream deposits in the budget. */
  request(): void {
    this.#requests[this.#advance()]++;
  }

  /** Takes one retry from the budget, or says there is none left. */
  tryRetry(): boolean {
    this.#advance();
    let requests = 0;
    let retries = 0;
    for (let i = 0; i < SLOTS; i++) {
      requests += this.#requests[i];
      retries += this.#retries[i];
    }
    if (retries >= Math.max(this.#min, requests * this.#share)) return false;
    this.#retries[this.#now % SLOTS]++;
    return true;
  }

  /** Moves to the current slot, clearing the ones that fell out of the window; returns its index. */
  #advance(): number {
    const now = Math.floor(performance.now() / this.#slotMs);
    if (now !== this.#now) {
      const gap = Math.min(now - this.#now, SLOTS);
      for (let i = 1; i <= gap; i++) {
        const k = (this.#now + i) % SLOTS;
        this.#requests[k] = 0;
        this.#retries[k] = 0;
      }
      this.#now = now;
    }
    return now % SLOTS;
  }
}
