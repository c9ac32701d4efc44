import { afterEach, describe, expect, it } from "vitest";
import { createEdgeAgent, type EdgeAgent } from "../../../edge-agent/agent.ts";
import { loadConfig } from "../../../edge-agent/config.ts";
import { DEFAULT_VIEW } from "../../../edge-agent/signalling/catalogue.ts";
import type { CommandOutcome } from "../../../edge-agent/signalling/command-sender.ts";
import { searchPictures } from "../../../edge-agent/signalling/picture-search.ts";
import { createUdpTransport } from "../../../edge-agent/signalling/server.ts";
import { createSimulator, type Simulator } from "../../../edge-agent/simulator/index.ts";
import {
  STORED_PICTURE_PERIOD_MS,
  storedPicture,
} from "../../../edge-agent/simulator/stored-pictures.ts";
import { CommandResult } from "../../../lib/contracts/commands.ts";
import { PictureSearchParams, PictureSearchResult } from "../../../lib/contracts/pictures.ts";

/**
 * ehome-2.0 §8 rows QUERYPICTURES and UPLOADPIC, paged like §2.5: the agent loops `StartIdx` in
 * pages of 8 until a short page, stops at `limit` with `nextIdx`, and UPLOADPIC carries the PicID.
 */

const PICTURES = DEFAULT_VIEW.commands.queryPictures.reply.pictureFile!;

/** A sender whose device lists `total` pictures (or the given lines), recording every request. */
function fakeSender(total: number, lines?: (i: number) => string) {
  const requests: Record<string, unknown>[] = [];
  return {
    requests,
    async send(_deviceId: string, _command: string, values: Record<string, unknown> = {}) {
      requests.push(values);
      const from = Number(values.startIdx);
      const n = Math.max(0, Math.min(Number(values.chunkSize), total - from));
      const texts = Array.from(
        { length: n },
        (_, k) => lines?.(from + k) ?? `pic${from + k} 2026-01-01 00:00:00 ${1000 + from + k}`,
      );
      return {
        kind: "ok",
        status: 200,
        description: "OK",
        params: texts.length > 0 ? { [PICTURES]: texts } : {},
      } as CommandOutcome;
    },
  };
}

const params = (o: Partial<PictureSearchParams> = {}) =>
  PictureSearchParams.parse({
    channel: 1,
    startTime: "2026-01-01 00:00:00",
    stopTime: "2026-01-02 00:00:00",
    ...o,
  });

describe("picture-search paging (ehome-2.0 §2.5)", () => {
  it("asks pages of 8 from StartIdx, advancing by what came back, until a short page", async () => {
    const sender = fakeSender(19);
    const r = await searchPictures(sender, "cam", DEFAULT_VIEW, params({ limit: 50 }));
    expect(r.outcome.kind).toBe("ok");
    expect(sender.requests.map((q) => [q.startIdx, q.chunkSize])).toEqual([
      [0, 8],
      [8, 8],
      [16, 8],
    ]);
    expect(r.result?.pictures.map((p) => p.fileName)).toEqual(
      Array.from({ length: 19 }, (_, i) => `pic${i}`),
    );
    expect(r.result).toMatchObject({ pages: 3, unparsed: 0 });
    expect(r.result?.nextIdx).toBeUndefined();
  });

  it("an exact multiple of 8 ends on the empty page after it", async () => {
    const sender = fakeSender(16);
    const r = await searchPictures(sender, "cam", DEFAULT_VIEW, params({ limit: 50 }));
    expect(sender.requests).toHaveLength(3);
    expect(r.result?.pictures).toHaveLength(16);
    expect(r.result?.nextIdx).toBeUndefined();
  });

  it("stops at limit with nextIdx, asking only what is still wanted; resuming continues there", async () => {
    const sender = fakeSender(30);
    const first = await searchPictures(sender, "cam", DEFAULT_VIEW, params({ limit: 10 }));
    expect(sender.requests.map((q) => q.chunkSize)).toEqual([8, 2]);
    expect(first.result?.pictures).toHaveLength(10);
    expect(first.result?.nextIdx).toBe(10);
    const rest = await searchPictures(
      sender,
      "cam",
      DEFAULT_VIEW,
      params({ limit: 50, startIdx: 10 }),
    );
    expect(rest.result?.pictures.map((p) => p.fileName)).toEqual(
      Array.from({ length: 20 }, (_, i) => `pic${i + 10}`),
    );
  });

  it("skips and counts lines that are not four tokens, and cannot be kept paging by them", async () => {
    const sender = fakeSender(1_000_000, () => "garbage");
    const r = await searchPictures(sender, "cam", DEFAULT_VIEW, params({ limit: 8 }));
    expect(r.result?.pictures).toEqual([]);
    expect(r.result?.unparsed).toBe(8 * 4);
    expect(sender.requests).toHaveLength(4);
    expect(r.result?.nextIdx).toBe(32);
  });

  it("a failed page fails the whole search (no partial list that looks complete)", async () => {
    const ok = fakeSender(100);
    let calls = 0;
    const sender = {
      send: async (...a: Parameters<typeof ok.send>): Promise<CommandOutcome> =>
        ++calls === 2 ? { kind: "timeout" } : ok.send(...a),
    };
    const r = await searchPictures(sender, "cam", DEFAULT_VIEW, params({ limit: 50 }));
    expect(r.outcome.kind).toBe("timeout");
    expect(r.result).toBeUndefined();
  });
});

let agent: EdgeAgent | undefined;
let sim: Simulator | undefined;
afterEach(async () => {
  await sim?.close();
  await agent?.close();
  sim = undefined;
  agent = undefined;
});

async function agentWithDevice() {
  const config = loadConfig({
    EHOME_HOST: "127.0.0.1",
    EHOME_SIGNAL_PORT: "0",
    EHOME_AGENT_ID: "pictures",
    EHOME_COMMAND_RESEND_MS: "300",
  });
  agent = createEdgeAgent(config, {
    transport: createUdpTransport({ host: config.host, port: config.signalPort }),
    events: { emit: () => {} },
  });
  await agent.start();
  sim = await createSimulator(
    { agent: agent.signalAddress(), devices: 1, channels: 2, seed: 3 },
    { onError: () => {} },
  );
  await sim.start();
  await sim.waitFor("all-online", 5000);
  return { agent, deviceId: sim.devices[0]!.id };
}

const command = (deviceId: string, type: string, p: Record<string, unknown>) =>
  ({
    commandId: `c-${type}-${Math.random()}`,
    deviceId,
    type,
    params: p,
    deadline: Date.now() + 30_000,
  }) as Parameters<EdgeAgent["commands"]["execute"]>[0];

describe("picture commands with a simulated device over UDP", () => {
  it("picture-search lists the device's stored pictures of a channel across pages; picture-fetch of one is answered 200", async () => {
    const { agent, deviceId } = await agentWithDevice();
    // Three days: 18 pictures (one per 4 h), so pages of 8, 8, 2.
    const search = {
      channel: 2,
      startTime: "2026-01-01 00:00:00",
      stopTime: "2026-01-03 23:59:59",
      limit: 50,
    };
    const r = CommandResult.parse(
      await agent.commands.execute(command(deviceId, "picture-search", search)),
    );
    expect(r.state).toBe("succeeded");
    const result = PictureSearchResult.parse(r.result);
    const firstSlot = Date.UTC(2026, 0, 1) / STORED_PICTURE_PERIOD_MS;
    const expected = Array.from({ length: 18 }, (_, i) => storedPicture(2, firstSlot + i));
    expect(result.pictures).toEqual(
      expected.map((f) => ({ fileName: f.fileName, time: f.time, size: f.size })),
    );
    expect(result.pages).toBe(3);

    const fetched = CommandResult.parse(
      await agent.commands.execute(
        command(deviceId, "picture-fetch", {
          channel: 2,
          fileName: expected[5]!.fileName,
          picId: "cap-0123456789abcdef0123",
        }),
      ),
    );
    expect(fetched).toMatchObject({
      state: "succeeded",
      result: { picId: "cap-0123456789abcdef0123", fileName: expected[5]!.fileName },
    });
  });

  it("picture-fetch of another channel's file, a future file or a foreign name fails with the device's 400", async () => {
    const { agent, deviceId } = await agentWithDevice();
    const future = storedPicture(1, Math.ceil(Date.now() / STORED_PICTURE_PERIOD_MS) + 10);
    for (const [channel, fileName] of [
      [2, storedPicture(1, 100).fileName],
      [1, future.fileName],
      [1, "ch01_00000251000300"],
      [3, storedPicture(3, 100).fileName],
    ] as const) {
      const r = await agent.commands.execute(
        command(deviceId, "picture-fetch", { channel, fileName, picId: "cap-x" }),
      );
      expect(r, fileName).toMatchObject({
        state: "failed",
        error: { code: "DEVICE_ERROR", status: 400 },
      });
    }
    expect(sim!.stats().storedPicturesUploaded).toBe(0);
  });

  it("refuses bad params before anything is sent", async () => {
    const { agent, deviceId } = await agentWithDevice();
    for (const p of [
      { channel: 1, fileName: "../etc/passwd", picId: "cap-x" },
      { channel: 1, fileName: "a b", picId: "cap-x" },
      { channel: 0, fileName: "ch0001_00000000000000001", picId: "cap-x" },
    ]) {
      const r = await agent.commands.execute(command(deviceId, "picture-fetch", p));
      expect(r).toMatchObject({ state: "failed", error: { code: "VALIDATION_FAILED" } });
    }
    const r = await agent.commands.execute(
      command(deviceId, "picture-search", { channel: 1, startTime: "yesterday", stopTime: "x" }),
    );
    expect(r).toMatchObject({ state: "failed", error: { code: "VALIDATION_FAILED" } });
    const picture = new Set(["queryPictures", "uploadPic"]);
    expect(sim!.devices[0]!.commands.filter((c) => picture.has(c.commandId ?? ""))).toEqual([]);
  });
});
