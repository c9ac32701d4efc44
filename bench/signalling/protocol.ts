import type { LatencyHistogram } from "../lib/histogram.ts";

/** Requests the parent sends to the benchmark children, and what they answer. */

export interface Target {
  host: string;
  port: number;
}

// ---- generator ------------------------------------------------------------------------------

export interface GeneratorInit {
  type: "init";
  target: Target;
  idPrefix: string;
  firstIndex: number;
  count: number;
}

export interface GeneratorRegister {
  type: "register";
  /** Registers this generator's devices [first, first + count) (local indices). */
  first: number;
  count: number;
  /** REGISTERs in flight at once. */
  window: number;
  /**
   * When set, the first REGISTERs are spread evenly over this many ms instead (`window` is then
   * ignored): device k of the slice sends at k × spreadMs ÷ count.
   */
  spreadMs?: number;
  /** Wait before resending an unanswered REGISTER. */
  retryMs: number;
  maxSends: number;
}

export interface RegisterResult {
  registered: number;
  failed: number;
  sends: number;
  /** Replies whose Status was not 200 (the raw echo's replies have none and count as answered). */
  refused: number;
  elapsedMs: number;
}

export interface GeneratorStep {
  type: "step";
  /** KEEPALIVEs per second this generator offers (open loop). */
  rate: number;
  durationMs: number;
  /** After the last send, stop waiting once no reply came for this long ... */
  idleMs: number;
  /** ... or at the latest after this long. */
  maxDrainMs: number;
}

export interface StepResult {
  sent: number;
  /** Replies matched to a KEEPALIVE of this step by device socket and Sequence. */
  answered: number;
  /** Replies with a non-200 Status (e.g. 403: the agent does not know the device). */
  rejected: number;
  /** Replies that matched nothing outstanding (duplicates, or too late for their ring slot). */
  unmatched: number;
  /** Wall-clock ms (epoch, sub-ms) of the first send, last send and last matched reply. */
  firstSendAt: number;
  lastSendAt: number;
  lastReplyAt: number;
  /** Largest gap between two send ticks (1 ms apart when the generator keeps up). */
  maxTickGapMs: number;
  /** Datagrams the largest single tick had to send (a backlog means the generator fell behind). */
  maxBurst: number;
  sendErrors: number;
  /** CPU µs this generator used during the step (user + system). */
  cpuUs: number;
  latency: LatencyHistogram;
}

export type GeneratorRequest = GeneratorInit | GeneratorRegister | GeneratorStep;

// ---- servers (agent and raw echo) -------------------------------------------------------------

export interface ServerReady {
  host: string;
  port: number;
  pid: number;
}

export interface MemoryRequest {
  type: "memory";
}

export interface MemorySample {
  /** After two full GCs. */
  rssBytes: number;
  heapUsedBytes: number;
  externalBytes: number;
  arrayBuffersBytes: number;
  sessions: number;
}

export interface CountersRequest {
  type: "counters";
}

export interface ServerCounters {
  datagramsIn: number;
  datagramsOut: number;
  /** Agent only: KEEPALIVEs answered 200 / answered 403. */
  keepalives: number;
  keepalivesUnknown: number;
  decodeErrors: number;
  sendErrors: number;
  sessions: number;
  /** process.cpuUsage() user + system, µs. */
  cpuUs: number;
}

export type ServerRequest = MemoryRequest | CountersRequest;
