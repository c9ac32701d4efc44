/**
 * Per-source-address token buckets (issue 7 item 3): signalling datagrams
 * (`EHOME_SIGNAL_RATE_PER_ADDRESS`, `EHOME_SIGNAL_BURST_PER_ADDRESS`) and device uploads
 * (`EHOME_UPLOAD_RATE_PER_ADDRESS`). NAT'd fleets share one public address, so the defaults are
 * generous; the limit is for floods, not for devices.
 *
 * Cost per call: one Map lookup and a few arithmetic operations on a mutable record; a new address
 * allocates one record. Memory is bounded: at most `maxAddresses` records; a full table forgets
 * its oldest record, and a sweep forgets idle ones (a bucket that refilled completely carries no
 * information). The sweep runs inside `allow` once per `sweepIntervalMs` (no timer to leak). Forgetting a record only ever gives that address a full bucket again, so an
 * attacker rotating addresses cannot make the limiter stricter for anyone else.
 *
 * Loopback sources (127.0.0.0/8, ::1, ::ffff:127.x) are exempt: they are the agent's own host
 * (simulators, benchmarks, probes), never a device, and the kernel drops them from outside.
 *
 * UDP source addresses can be spoofed: a per-address limit bounds what one address costs, not
 * what a spoofing attacker can send in all (docs/SECURITY.md).
 */

export interface AddressLimiterConfig {
  /** Tokens added per second; 0 disables the limiter (every call allowed, nothing stored). */
  ratePerSecond: number;
  /** Bucket size (the burst an address may send at once). At least 1. */
  burst: number;
  /** Addresses tracked at most. Default 100 000. */
  maxAddresses?: number;
  /** Limit loopback too (tests over loopback sockets). Default false: loopback is exempt. */
  limitLoopback?: boolean;
  /** Idle records are swept at most this often (from `allow`). Default 60 s. */
  sweepIntervalMs?: number;
}

export interface AddressLimiterCounters {
  /** Calls refused. */
  limited: number;
  /** Addresses forgotten because the table was full. */
  evicted: number;
  /** Addresses tracked now. */
  addresses: number;
}

export interface AddressLimiter {
  /** Takes one token of `host`'s bucket; false (counted) when it is empty. */
  allow(host: string, now: number): boolean;
  /** Seconds until `host` has a token again (for `Retry-After`), at least 1. */
  retryAfterSeconds(host: string, now: number): number;
  counters(): AddressLimiterCounters;
  /** Forgets idle records now (`allow` calls it once per sweep interval). */
  sweep(now: number): void;
  /** Forgets everything. Idempotent. */
  close(): void;
}

/** 127.0.0.0/8, ::1 or an IPv4-mapped 127.x: exempt from the per-address limits. */
export function isLoopback(host: string): boolean {
  return host.startsWith("127.") || host === "::1" || host.startsWith("::ffff:127.");
}

interface Bucket {
  tokens: number;
  at: number;
}

export function createAddressLimiter(config: AddressLimiterConfig): AddressLimiter {
  const rate = config.ratePerSecond;
  const perMs = rate / 1000;
  const burst = Math.max(1, config.burst);
  const maxAddresses = Math.max(1, config.maxAddresses ?? 100_000);
  const buckets = new Map<string, Bucket>();
  const c = { limited: 0, evicted: 0 };
  const sweepEvery = config.sweepIntervalMs ?? 60_000;
  const exempt = config.limitLoopback ? () => false : isLoopback;
  let nextSweep = Number.NEGATIVE_INFINITY;

  const limiter: AddressLimiter = {
    allow(host, now) {
      if (rate <= 0 || exempt(host)) return true;
      if (now >= nextSweep) {
        nextSweep = now + sweepEvery;
        limiter.sweep(now);
      }
      const b = buckets.get(host);
      if (b === undefined) {
        if (buckets.size >= maxAddresses) {
          buckets.delete(buckets.keys().next().value as string);
          c.evicted++;
        }
        buckets.set(host, { tokens: burst - 1, at: now });
        return true;
      }
      const elapsed = now - b.at;
      if (elapsed > 0) {
        const t = b.tokens + elapsed * perMs;
        b.tokens = t > burst ? burst : t;
        b.at = now;
      }
      if (b.tokens >= 1) {
        b.tokens -= 1;
        return true;
      }
      c.limited++;
      return false;
    },
    retryAfterSeconds(host, now) {
      const b = buckets.get(host);
      if (rate <= 0 || b === undefined) return 1;
      const missing = 1 - (b.tokens + Math.max(0, now - b.at) * perMs);
      return Math.max(1, Math.ceil(missing / rate));
    },
    counters: () => ({ ...c, addresses: buckets.size }),
    sweep(now) {
      for (const [host, b] of buckets) {
        if (b.tokens + (now - b.at) * perMs >= burst) buckets.delete(host);
      }
    },
    close() {
      buckets.clear();
    },
  };
  return limiter;
}
