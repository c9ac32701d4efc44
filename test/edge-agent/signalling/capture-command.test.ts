import { afterEach, describe, expect, it } from "vitest";
import { COMMANDS } from "../../../edge-agent/signalling/catalogue.ts";
import { childText } from "../../../edge-agent/signalling/codec/index.ts";
import { CommandResult } from "../../../lib/contracts/commands.ts";
import { registerDatagram, responseDatagram } from "../helpers/devices.ts";
import { type Harness, startHarness } from "../helpers/harness.ts";

// ehome-2.0 §8 Capture row: capture → MANUALSNAP (Method CONTROL), SendTo 1, PicID chosen by the
// platform; 200 once the picture is taken.

const DEV = "10.1.1.1";
let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const capture = (params: Record<string, unknown>) => ({
  commandId: "c-cap",
  deviceId: "cam-1",
  type: "capture" as const,
  params,
  deadline: Date.now() + 60_000,
});

const tick = () => new Promise((r) => setImmediate(r));

describe("capture command → MANUALSNAP", () => {
  it("sends Chan, SnapType 0, SendTo 1, Resolution, Quality, Frequency 1 and the PicID; 200 → succeeded", async () => {
    h = await startHarness();
    h.transport.deliver(registerDatagram({ deviceId: "cam-1", sequence: 1 }), DEV, 40001);
    const p = h.agent.commands.execute(
      capture({ channel: 2, picId: "cap-123", resolution: "1920*1080", quality: 1 }),
    );
    await tick();
    const req = h.requestsTo(40001).at(-1)!;
    const f = COMMANDS.manualSnap.params;
    expect(req.command).toBe(COMMANDS.manualSnap.command);
    expect(req.header.method).toBe(COMMANDS.manualSnap.method);
    const values = Object.fromEntries(
      Object.entries(f).map(([k, name]) => [k, childText(req.params, name)]),
    );
    expect(values).toEqual({
      chan: "2",
      snapType: "0",
      sendTo: "1",
      resolution: "1920*1080",
      quality: "1",
      frequency: "1",
      picId: "cap-123",
    });
    h.transport.deliver(responseDatagram(req.header.sequence, req.command, 200), DEV, 40001);
    const r = CommandResult.parse(await p);
    expect(r).toMatchObject({ state: "succeeded", result: { picId: "cap-123", channel: 2 } });
  });

  it("omits Resolution when not given, defaults Quality to 0, and refuses a bad PicID", async () => {
    h = await startHarness();
    h.transport.deliver(registerDatagram({ deviceId: "cam-1", sequence: 1 }), DEV, 40001);
    const p = h.agent.commands.execute(capture({ channel: 1, picId: "cap-1" }));
    await tick();
    const req = h.requestsTo(40001).at(-1)!;
    expect(childText(req.params, COMMANDS.manualSnap.params.resolution)).toBeUndefined();
    expect(childText(req.params, COMMANDS.manualSnap.params.quality)).toBe("0");
    h.transport.deliver(responseDatagram(req.header.sequence, req.command, 200), DEV, 40001);
    expect((await p).state).toBe("succeeded");

    const bad = await h.agent.commands.execute(capture({ channel: 1, picId: "has space" }));
    expect(bad).toMatchObject({ state: "failed", error: { code: "VALIDATION_FAILED" } });
  });
});
