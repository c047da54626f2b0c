/**
 * The simulator's virtual clock: events in time order, and for equal times in the order they were
 * scheduled, so a replay is deterministic. A binary heap keeps scheduling and taking O(log n).
 */
export class EventQueue<E> {
  readonly #times: number[] = [];
  readonly #seqs: number[] = [];
  readonly #events: E[] = [];
  #seq = 0;

  get size(): number {
    return this.#events.length;
  }

  schedule(at: number, event: E): void {
    const seq = this.#seq++;
    const times = this.#times;
    const seqs = this.#seqs;
    const events = this.#events;
    let i = events.length;
    times.push(at);
    seqs.push(seq);
    events.push(event);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#before(at, seq, parent)) break;
      times[i] = times[parent] as number;
      seqs[i] = seqs[parent] as number;
      events[i] = events[parent] as E;
      i = parent;
    }
    times[i] = at;
    seqs[i] = seq;
    events[i] = event;
  }

  /** The time of the next event, or undefined when none is left. */
  peekTime(): number | undefined {
    return this.#times[0];
  }

  /** Takes the next event. */
  take(): { at: number; event: E } | undefined {
    const times = this.#times;
    const seqs = this.#seqs;
    const events = this.#events;
    if (events.length === 0) return undefined;
    const top = { at: times[0] as number, event: events[0] as E };
    const lastTime = times.pop() as number;
    const lastSeq = seqs.pop() as number;
    const lastEvent = events.pop() as E;
    const n = events.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= n) break;
        const right = left + 1;
        const child = right < n && this.#less(right, left) ? right : left;
        if (!this.#before(times[child] as number, seqs[child] as number, -1, lastTime, lastSeq)) break;
        times[i] = times[child] as number;
        seqs[i] = seqs[child] as number;
        events[i] = events[child] as E;
        i = child;
      }
      times[i] = lastTime;
      seqs[i] = lastSeq;
      events[i] = lastEvent;
    }
    return top;
  }

  #less(a: number, b: number): boolean {
    const ta = this.#times[a] as number;
    const tb = this.#times[b] as number;
    return ta < tb || (ta === tb && (this.#seqs[a] as number) < (this.#seqs[b] as number));
  }

  /** Whether (at, seq) comes before the entry at `index` (or before (otherAt, otherSeq) when index < 0). */
  #before(at: number, seq: number, index: number, otherAt?: number, otherSeq?: number): boolean {
    const t = index >= 0 ? (this.#times[index] as number) : (otherAt as number);
    const s = index >= 0 ? (this.#seqs[index] as number) : (otherSeq as number);
    return at < t || (at === t && seq < s);
  }
}
