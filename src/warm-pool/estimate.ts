import { type Random, seededRandom } from '../util/distribution.ts';

/**
 * The least warm pool that meets a queue-time objective, for one class and one arrival rate.
 *
 * The model is the planner's own rule: every job that arrives makes Gantry create one runner (for the
 * job, or to refill the warm pool the job emptied by one), within the class's creation rate. A job
 * takes the runner that is ready first (GitHub hands the oldest queued job to the next runner that
 * comes online, and an arriving job to any idle one), so with W warm runners the n-th job is served by
 * the runner created for the (n−W)-th arrival, or by a warm one. Runs arrive at random (Poisson) and
 * bring their jobs together (a matrix), in batch sizes as observed. The model is evaluated by drawing
 * a long stretch of arrivals at the hour's rate, with the same random numbers for every pool size, so
 * a larger pool never predicts a longer wait.
 */

export interface WarmPoolDemand {
  /** Jobs expected in the hour. */
  jobsPerHour: number;
  /** Jobs per run arrival and how often each size comes; empty: one job per run. */
  batchSizes: readonly { size: number; weight: number }[];
}

export interface WarmPoolSupply {
  /** Seconds a job waits when it must wait for a runner made for it (created, started, online, handed the job). */
  coldSeconds: (random: Random) => number;
  /** Seconds a job waits when an idle runner is there (GitHub's hand-off). */
  warmSeconds: (random: Random) => number;
  /** The class's creation rate (runners a second). */
  maxCreatePerSecond: number;
}

export interface QueueTimeObjective {
  /** 0.5, 0.9, 0.95 or 0.99. */
  quantile: number;
  seconds: number;
}

export interface WarmPoolEstimate {
  size: number;
  /** The objective's quantile of queue time the model predicts at that size. */
  predictedSeconds: number;
  /** False when no size within the bounds meets the objective: the size is then the least that does best. */
  met: boolean;
}

export interface EstimateOptions {
  min: number;
  max: number;
  /** Jobs drawn per evaluation (more: steadier, slower). */
  jobs?: number;
  seed?: number;
}

const DEFAULT_JOBS = 4_000;
/** A size that comes within this of the best the bounds allow counts as doing the best. */
const SLACK_SECONDS = 0.5;

interface Draws {
  /** Arrival times (seconds) of each job, in order. */
  arrivals: Float64Array;
  cold: Float64Array;
  warm: Float64Array;
  warmMedian: number;
}

function drawArrivals(demand: WarmPoolDemand, supply: WarmPoolSupply, jobs: number, seed: number): Draws {
  const random = seededRandom(seed);
  const sizes = demand.batchSizes.filter((b) => b.size >= 1 && b.weight > 0);
  const totalWeight = sizes.reduce((sum, b) => sum + b.weight, 0);
  const meanBatch = totalWeight > 0 ? sizes.reduce((sum, b) => sum + b.size * b.weight, 0) / totalWeight : 1;
  const runsPerSecond = demand.jobsPerHour / meanBatch / 3600;
  const batchSize = () => {
    if (totalWeight <= 0) return 1;
    let pick = random() * totalWeight;
    for (const b of sizes) {
      pick -= b.weight;
      if (pick <= 0) return Math.round(b.size);
    }
    return Math.round(sizes.at(-1)?.size ?? 1);
  };
  const arrivals = new Float64Array(jobs);
  const cold = new Float64Array(jobs);
  const warm = new Float64Array(jobs);
  let t = 0;
  let n = 0;
  while (n < jobs) {
    t += -Math.log(Math.max(random(), Number.MIN_VALUE)) / runsPerSecond;
    for (let k = batchSize(); k > 0 && n < jobs; k--, n++) arrivals[n] = t;
  }
  for (let i = 0; i < jobs; i++) {
    cold[i] = supply.coldSeconds(random);
    warm[i] = supply.warmSeconds(random);
  }
  return { arrivals, cold, warm, warmMedian: medianOf(warm) };
}

/** The quantile of queue time with `size` warm runners, for the drawn arrivals. */
function evaluate(draws: Draws, size: number, ratePerSecond: number, quantile: number): number {
  const { arrivals, cold, warm, warmMedian } = draws;
  const jobs = arrivals.length;
  // Ready times of the runners made so far, in creation order; created in arrival order at a steady
  // rate, and each ready after its own start-up, so they need sorting only among the few in flight.
  const ready = new MinHeap();
  for (let i = 0; i < size; i++) ready.push(Number.NEGATIVE_INFINITY);
  const waits = new Float64Array(jobs);
  const spacing = ratePerSecond > 0 ? 1 / ratePerSecond : 0;
  let lastCreate = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < jobs; i++) {
    const arrival = arrivals[i] as number;
    // The runner this arrival makes Gantry create; cold[i] counts from the arrival to a start, so the
    // runner is online its hand-off earlier.
    const created = Math.max(arrival, lastCreate + spacing);
    lastCreate = created;
    ready.push(created + Math.max(0, (cold[i] as number) - warmMedian));
    const runner = ready.pop();
    waits[i] = Math.max(0, runner - arrival) + (warm[i] as number);
  }
  waits.sort();
  return waits[Math.max(0, Math.ceil(quantile * jobs) - 1)] as number;
}

function medianOf(values: Float64Array): number {
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

/** The least pool size within the bounds that meets the objective (see the module comment). */
export function leastWarmPool(
  demand: WarmPoolDemand,
  supply: WarmPoolSupply,
  objective: QueueTimeObjective,
  options: EstimateOptions,
): WarmPoolEstimate {
  const min = Math.max(0, Math.floor(options.min));
  const max = Math.max(min, Math.floor(options.max));
  if (!(demand.jobsPerHour > 0)) return { size: min, predictedSeconds: 0, met: true };
  const draws = drawArrivals(demand, supply, options.jobs ?? DEFAULT_JOBS, options.seed ?? 1);
  const at = (size: number) => evaluate(draws, size, supply.maxCreatePerSecond, objective.quantile);
  const atMin = at(min);
  if (atMin <= objective.seconds) return { size: min, predictedSeconds: atMin, met: true };
  const best = at(max);
  const met = best <= objective.seconds;
  const goal = met ? objective.seconds : best + SLACK_SECONDS;
  if (atMin <= goal) return { size: min, predictedSeconds: atMin, met };
  // The prediction never grows with the size (same draws), so the least size meeting the goal is found by bisection.
  let low = min;
  let high = max;
  let highValue = best;
  while (high - low > 1) {
    const middle = Math.floor((low + high) / 2);
    const value = at(middle);
    if (value <= goal) {
      high = middle;
      highValue = value;
    } else {
      low = middle;
    }
  }
  return { size: high, predictedSeconds: highValue, met };
}

/** A binary min-heap of numbers. */
class MinHeap {
  readonly #items: number[] = [];

  push(value: number): void {
    const items = this.#items;
    items.push(value);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((items[parent] as number) <= value) break;
      items[i] = items[parent] as number;
      i = parent;
    }
    items[i] = value;
  }

  pop(): number {
    const items = this.#items;
    const top = items[0] as number;
    const last = items.pop() as number;
    if (items.length > 0) {
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= items.length) break;
        const right = left + 1;
        const child =
          right < items.length && (items[right] as number) < (items[left] as number) ? right : left;
        if ((items[child] as number) >= last) break;
        items[i] = items[child] as number;
        i = child;
      }
      items[i] = last;
    }
    return top;
  }
}
