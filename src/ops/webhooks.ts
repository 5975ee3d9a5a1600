import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Outcome } from './outcomes.js';

/**
 * Completion webhooks: a JSON POST per finished job to the job's webhook URL (its own, or
 * its datasource's), signed with HMAC-SHA256, retried with exponential backoff a bounded
 * number of times. Deliveries never block a run: the runner only queues them.
 */
export interface WebhookSettings {
  /** Shared secret for the signature header; without one, requests are sent unsigned. */
  readonly secret: string | null;
  /** Tries per delivery, the first included. */
  readonly maxAttempts: number;
  /** Wait before the second try; doubled for each further one. */
  readonly backoffMs: number;
  /** Per-request time limit. */
  readonly timeoutMs: number;
  /** Requests in flight at once. */
  readonly concurrency: number;
  /** Deliveries waiting at most; beyond it the oldest waiting one is dropped (and reported). */
  readonly maxQueued: number;
}

export const SIGNATURE_HEADER = 'x-querybatch-signature';

/** The body a webhook receives. */
export interface WebhookPayload extends Outcome {
  readonly event: 'succeeded' | 'failed';
}

/** `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`: the timestamp makes a replay detectable. */
export function signPayload(secret: string, body: string, unixSeconds: number): string {
  const mac = createHmac('sha256', secret).update(`${unixSeconds}.${body}`).digest('hex');
  return `t=${unixSeconds},v1=${mac}`;
}

/**
 * Checks a signature header against a body, for receivers. False when it is missing,
 * malformed, wrong, or older than `toleranceSeconds`.
 */
export function verifySignature(secret: string, body: string, header: string | undefined | null, toleranceSeconds = 300, now = Date.now()): boolean {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header ?? '');
  if (!m) return false;
  const t = Number(m[1]);
  if (Math.abs(now / 1000 - t) > toleranceSeconds) return false;
  const expected = Buffer.from(signPayload(secret, body, t).slice(-64), 'hex');
  return timingSafeEqual(expected, Buffer.from(m[2]!, 'hex'));
}

export interface DeliveryFailure {
  readonly id: string;
  readonly url: string;
  readonly attempts: number;
  readonly error: string;
}

interface Delivery {
  readonly url: string;
  readonly payload: WebhookPayload;
  readonly body: string;
  attempts: number;
}

export class WebhookNotifier {
  readonly #settings: WebhookSettings;
  readonly #onGiveUp: (failure: DeliveryFailure) => void;
  readonly #waiting: Delivery[] = [];
  readonly #inFlight = new Set<Promise<void>>();
  /** Deliveries waiting for their next try, by timer. */
  readonly #timers = new Map<NodeJS.Timeout, Delivery>();
  readonly #stopping = new AbortController();
  #idle: Array<() => void> = [];

  constructor(settings: WebhookSettings, onGiveUp: (failure: DeliveryFailure) => void) {
    this.#settings = settings;
    this.#onGiveUp = onGiveUp;
  }

  /** Queues a delivery and returns at once. */
  send(url: string, outcome: Outcome): void {
    if (this.#stopping.signal.aborted) return;
    const payload: WebhookPayload = { event: outcome.status, ...outcome };
    this.#waiting.push({ url, payload, body: JSON.stringify(payload), attempts: 0 });
    if (this.#waiting.length > this.#settings.maxQueued) {
      const dropped = this.#waiting.shift()!;
      this.#giveUp(dropped, `dropped: more than ${this.#settings.maxQueued} deliveries were waiting`);
    }
    this.#pump();
  }

  #pump(): void {
    while (this.#inFlight.size < this.#settings.concurrency && this.#waiting.length > 0) {
      const delivery = this.#waiting.shift()!;
      const attempt = this.#attempt(delivery).finally(() => {
        this.#inFlight.delete(attempt);
        this.#pump();
      });
      this.#inFlight.add(attempt);
    }
    if (this.#inFlight.size === 0 && this.#waiting.length === 0 && this.#timers.size === 0) {
      for (const resolve of this.#idle) resolve();
      this.#idle = [];
    }
  }

  async #attempt(delivery: Delivery): Promise<void> {
    delivery.attempts++;
    let error: string;
    try {
      const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'querybatch' };
      if (this.#settings.secret !== null) headers[SIGNATURE_HEADER] = signPayload(this.#settings.secret, delivery.body, Math.floor(Date.now() / 1000));
      const response = await fetch(delivery.url, {
        method: 'POST',
        headers,
        body: delivery.body,
        signal: AbortSignal.any([AbortSignal.timeout(this.#settings.timeoutMs), this.#stopping.signal]),
      });
      await response.body?.cancel().catch(() => {});
      if (response.ok) return;
      error = `HTTP ${response.status}`;
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      error = cause?.code ?? cause?.message ?? (e as Error).message;
    }
    if (delivery.attempts >= this.#settings.maxAttempts || this.#stopping.signal.aborted) {
      this.#giveUp(delivery, error);
      return;
    }
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      this.#waiting.push(delivery);
      this.#pump();
    }, this.#settings.backoffMs * 2 ** (delivery.attempts - 1));
    this.#timers.set(timer, delivery);
  }

  #giveUp(delivery: Delivery, error: string): void {
    this.#onGiveUp({ id: delivery.payload.id, url: delivery.url, attempts: delivery.attempts, error });
  }

  /** Resolves when nothing is waiting, in flight or scheduled for a retry. */
  idle(): Promise<void> {
    return new Promise((resolve) => {
      this.#idle.push(resolve);
      this.#pump();
    });
  }

  /**
   * Waits up to `waitMs` for every delivery to finish (retries included), then aborts what
   * is left: those are given up on and reported.
   */
  async close(waitMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.idle(), new Promise<void>((resolve) => (timer = setTimeout(resolve, waitMs)))]);
    clearTimeout(timer);
    this.#stopping.abort();
    const left = [...this.#waiting.splice(0), ...this.#timers.values()];
    for (const t of this.#timers.keys()) clearTimeout(t);
    this.#timers.clear();
    for (const delivery of left) this.#giveUp(delivery, 'not delivered before close()');
    await Promise.allSettled([...this.#inFlight]);
  }
}
