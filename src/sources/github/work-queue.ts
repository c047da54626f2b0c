/**
 * A bounded queue that runs work with limited concurrency while keeping items of the same key in
 * order (deliveries of one workflow run are applied in the order they arrived).
 */
export class KeyedWorkQueue<T> {
  readonly #capacity: number;
  readonly #concurrency: number;
  readonly #worker: (item: T) => Promise<void>;
  readonly #onError: (err: unknown, item: T) => void;
  readonly #pending: { key: string; item: T }[] = [];
  readonly #activeKeys = new Set<string>();
  #idleWaiters: (() => void)[] = [];

  constructor(options: {
    capacity: number;
    concurrency: number;
    worker: (item: T) => Promise<void>;
    onError: (err: unknown, item: T) => void;
  }) {
    this.#capacity = options.capacity;
    this.#concurrency = options.concurrency;
    this.#worker = options.worker;
    this.#onError = options.onError;
  }

  get size(): number {
    return this.#pending.length + this.#activeKeys.size;
  }

  /** False (and nothing queued) when the queue is full. */
  push(key: string, item: T): boolean {
    if (this.#pending.length >= this.#capacity) return false;
    this.#pending.push({ key, item });
    this.#pump();
    return true;
  }

  /** Resolves once everything queued so far (and anything it queued) is done. */
  whenIdle(): Promise<void> {
    if (this.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #pump(): void {
    while (this.#activeKeys.size < this.#concurrency) {
      const index = this.#pending.findIndex((entry) => !this.#activeKeys.has(entry.key));
      if (index < 0) break;
      const [entry] = this.#pending.splice(index, 1);
      if (!entry) break;
      this.#activeKeys.add(entry.key);
      this.#worker(entry.item)
        .catch((err: unknown) => this.#onError(err, entry.item))
        .finally(() => {
          this.#activeKeys.delete(entry.key);
          this.#pump();
          if (this.size === 0) {
            const waiters = this.#idleWaiters;
            this.#idleWaiters = [];
            for (const resolve of waiters) resolve();
          }
        });
    }
  }
}
