import iconv from "iconv-lite";
import { describe, expect, it } from "vitest";
import { DEFAULT_VIEW } from "../../../edge-agent/signalling/catalogue.ts";
import { useHarness } from "./harness.ts";

const reg = DEFAULT_VIEW.commands.register.params;

describe("simulator registration (ehome-2.0 §2.1)", () => {
  const harness = useHarness();

  it("a GB2312 device declares GB2312 and sends the REGISTER fields of the capture", async () => {
    const { platform, sim } = await harness({
      devices: 1,
      encoding: "gb2312",
      firmwareVersion: "V5.4.5 build 170302",
      devType: "31",
    });
    await sim.start();
    await sim.waitFor("all-online", 2000);
    const [r] = platform.messages("register");
    const d = sim.devices[0]!;
    expect(r!.bytes.toString("latin1")).toMatch(/^<\?xml version="1\.0" encoding="GB2312"\?>/);
    expect(r!.header.encoding).toBe("GB2312");
    expect(r!.params).toMatchObject({
      [reg.netUnitType!]: "PU",
      [reg.deviceId!]: d.id,
      [reg.firmwareVersion!]: "V5.4.5 build 170302",
      [reg.localIp!]: "127.0.0.1",
      [reg.localPort!]: String(d.localAddress.port),
      [reg.devType!]: "31",
      [reg.manufacture!]: "0",
    });
    expect(r!.params[reg.password!]).toBeUndefined();
    expect(d.state).toBe("online");
    expect(d.encoding).toBe("GB2312");
  });

  it("a UTF-8 device declares UTF-8, and Password is sent when configured", async () => {
    const { platform, sim } = await harness({ devices: 1, encoding: "utf8", password: "s3cret" });
    await sim.start();
    await sim.waitFor("all-online", 2000);
    const [r] = platform.messages("register");
    expect(r!.bytes.toString("latin1")).toMatch(/^<\?xml version="1\.0" encoding="UTF-8"\?>/);
    expect(r!.header.encoding).toBe("UTF-8");
    expect(r!.password).toBe("s3cret");
  });

  it("GB2312 replies carry Chinese channel names as GB2312 bytes, not UTF-8", async () => {
    const { platform, sim } = await harness({ devices: 1, encoding: "gb2312" });
    await sim.start();
    await sim.waitFor("all-online", 2000);
    const id = sim.devices[0]!.id;
    await platform.request(id, "getDeviceConfig", { configCmd: "GetPicPara", configParam1: 1 });
    const raw = platform.received.at(-1)!.bytes;
    expect(raw.toString("latin1")).toMatch(/^<\?xml version="1\.0" encoding="GB2312"\?>/);
    expect(raw.includes(iconv.encode("通道01", "gb2312"))).toBe(true);
    expect(raw.includes(Buffer.from("通道01", "utf8"))).toBe(false);
  });

  it("mixed encoding alternates GB2312 and UTF-8 by device index", async () => {
    const { platform, sim } = await harness({ devices: 4, encoding: "mixed" });
    await sim.start();
    await sim.waitFor("all-online", 2000);
    const byId = new Map(platform.messages("register").map((m) => [m.deviceId, m.header.encoding]));
    expect(sim.devices.map((d) => byId.get(d.id))).toEqual(["GB2312", "UTF-8", "GB2312", "UTF-8"]);
  });

  it("devices have distinct zero-padded IDs and distinct source ports, seen by the platform", async () => {
    const { platform, sim } = await harness({ devices: 12, idPrefix: "cam-", firstIndex: 8 });
    await sim.start();
    await sim.waitFor("all-online", 2000);
    expect(sim.devices.map((d) => d.id)).toEqual(
      Array.from({ length: 12 }, (_, i) => `cam-${String(8 + i).padStart(5, "0")}`),
    );
    const ports = new Set(sim.devices.map((d) => d.localAddress.port));
    expect(ports.size).toBe(12);
    for (const d of sim.devices) {
      expect(platform.sessions.get(d.id)?.port).toBe(d.localAddress.port);
    }
  });

  it("several bind addresses are used round-robin (more than one ephemeral port range)", async () => {
    const { platform, sim } = await harness({ devices: 4, bind: ["127.0.0.1", "127.0.0.2"] });
    await sim.start();
    await sim.waitFor("all-online", 2000);
    expect(sim.devices.map((d) => d.localAddress.address)).toEqual([
      "127.0.0.2",
      "127.0.0.1",
      "127.0.0.2",
      "127.0.0.1",
    ]);
    for (const d of sim.devices) {
      expect(platform.sessions.get(d.id)?.address).toBe(d.localAddress.address);
    }
    const [r] = platform.messages("register", sim.devices[0]!.id);
    expect(r!.localIp).toBe("127.0.0.2");
  });

  it("spreads the first REGISTERs over registerSpreadMs", async () => {
    const { platform, sim } = await harness({ devices: 10, registerSpreadMs: 300 });
    await sim.start();
    await sim.waitFor("all-online", 2000);
    const times = platform.messages("register").map((m) => m.at);
    expect(Math.max(...times) - Math.min(...times)).toBeGreaterThanOrEqual(200);
  });

  it("retries REGISTER until it is answered 200", async () => {
    let refusals = 2;
    const { platform, sim } = await harness(
      { devices: 1, registerRetryMs: 40 },
      { registerStatus: () => (refusals-- > 0 ? 403 : 200) },
    );
    const rejected: number[] = [];
    sim.on("rejected", (e) => rejected.push(e.status));
    platform.answering = false;
    await sim.start();
    await platform.waitFor(() => platform.messages("register").length >= 2);
    expect(sim.devices[0]!.state).toBe("registering");
    platform.answering = true;
    await sim.waitFor("all-online", 2000);
    const s = sim.stats();
    expect(s.registerRefused).toBe(2);
    expect(s.registrations).toBe(1);
    expect(s.registerAttempts).toBeGreaterThanOrEqual(4);
    expect(rejected).toEqual([403, 403]);
    // Each attempt is a new request with its own Sequence (ehome-2.0 §3.1).
    const seqs = platform.messages("register").map((m) => m.header.sequence);
    expect(new Set(seqs).size).toBe(seqs.length);
  });
});
