import { describe, expect, it } from "vitest";
import { createFuzzSource, FUZZ_KINDS, MAX_UDP_PAYLOAD } from "../../bench/fuzz/datagrams.ts";
import type { FuzzScenario } from "../../bench/fuzz/index.ts";
import { render } from "../../bench/fuzz/report.ts";
import { LIMIT_DEFAULTS, QUICK_DEFAULTS, runLiveFuzz } from "../../bench/fuzz/run.ts";
import { replaceSection } from "../../bench/run-all.ts";

/**
 * The live fuzz of `npm run fuzz` (bench/fuzz) in small (issue 7, architecture §6: bad input never
 * crashes the agent): 10,000 hostile datagrams at an agent child process on its signalling and
 * alarm ports while 100 allowlisted devices keepalive. Fails when the agent died, a handler threw,
 * a window went by without legitimate keepalives answered, a legitimate device went offline, the
 * fuzz opened a session, or the heap after GC grew more than 16 MiB.
 */
describe("bench/fuzz: hostile datagrams at a running agent", () => {
  it("the fuzz source is seeded, stays under the UDP limit and produces every kind", () => {
    const a = createFuzzSource(3, ["LEGIT0000000"]);
    const b = createFuzzSource(3, ["LEGIT0000000"]);
    const seen = new Set<string>();
    let alarm = 0;
    for (let i = 0; i < 5_000; i++) {
      const x = a.next();
      const y = b.next();
      expect(y.bytes.equals(x.bytes)).toBe(true);
      expect(x.bytes.length).toBeLessThanOrEqual(MAX_UDP_PAYLOAD);
      seen.add(x.kind);
      if (x.port === "alarm") alarm++;
    }
    expect([...seen].sort()).toEqual([...FUZZ_KINDS].sort());
    expect(alarm).toBeGreaterThan(250);
  });

  it("10,000 fuzzed datagrams: the agent stays up, answers its devices and keeps its memory", async () => {
    const lines: string[] = [];
    const result = await runLiveFuzz({
      quick: true,
      ...QUICK_DEFAULTS,
      ...LIMIT_DEFAULTS,
      count: 10_000,
      startRate: QUICK_DEFAULTS.rate,
      agentLogLevel: "silent",
      // Loss on a shared 2-core machine is the kernel dropping at a full queue when a neighbour
      // takes the CPU; "stopped answering" is the every-window invariant.
      maxLossPct: 50,
      command: "test",
      log: (line) => lines.push(line),
    });
    const s = result.scenarios[0]!;
    const failed = s.invariants.filter((i) => !i.ok);
    expect(failed).toEqual([]);
    expect(s.pass).toBe(true);
    expect(s.agent.alive).toBe(true);
    expect(s.fuzz.sent).toBe(10_000);
    expect(s.agent.counters.handler_errors ?? 0).toBe(0);
    // Most of the fuzz reached the agent and most of it was refused by the decoder.
    expect(s.agent.counters.datagrams_in).toBeGreaterThan(5_000);
    expect(s.agent.counters.decode_errors).toBeGreaterThan(2_500);
    expect(s.agent.counters.alarm_port_datagrams).toBeGreaterThan(0);
    // Unprovisioned REGISTERs were refused, not given sessions.
    expect(s.agent.counters.registers_refused).toBeGreaterThan(0);
    expect(s.agent.sessionsAfter).toBe(QUICK_DEFAULTS.legitDevices);
    expect(s.legit.registration.registered).toBe(QUICK_DEFAULTS.legitDevices);
    expect(s.legit.falseOffline).toBe(0);
    const during = s.legit.windows.filter((w) => w.phase === "during");
    expect(during.length).toBeGreaterThan(0);
    for (const w of s.legit.windows) expect(w.answered).toBeGreaterThan(0);
    expect(s.legit.after.lost).toBeLessThan(s.legit.after.sent);
    expect(s.memory.curve.length).toBeGreaterThan(0);
    expect(s.memory.heapGrowthBytes).toBeLessThan(16 * 2 ** 20);

    const md = render({ ...result, scenarios: [{ ...s, codec: null } satisfies FuzzScenario] });
    expect(md).toContain("Command: `test`");
    expect(md).toContain("| agent alive | yes |");
    expect(replaceSection("# B\n", "fuzz", "Fuzz", md)).toContain("<!-- bench:fuzz:end -->");
    expect(lines.some((l) => l.includes("legitimate devices registered"))).toBe(true);
  }, 120_000);
});
