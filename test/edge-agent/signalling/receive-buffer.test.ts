import { describe, expect, it } from "vitest";
import { createUdpTransport } from "../../../edge-agent/signalling/server.ts";

/**
 * The signalling socket's kernel receive queue (issue 7, register storm: a full queue drops
 * REGISTERs): the transport asks for SO_RCVBUF, reports what the kernel granted, and warns when
 * net.core.rmem_max capped the request.
 */

const handlers = { onDatagram: () => {}, onSendError: () => {} };

function recordingLog() {
  const lines: { level: string; msg: string; fields: Record<string, unknown> }[] = [];
  const at =
    (level: string) =>
    (msg: string, fields: Record<string, unknown> = {}) =>
      lines.push({ level, msg, fields });
  return { log: { info: at("info"), warn: at("warn") }, lines };
}

describe("UDP receive buffer of the signalling socket", () => {
  it("reports the size the kernel granted for a modest request", async () => {
    const { log, lines } = recordingLog();
    const t = createUdpTransport({ host: "127.0.0.1", port: 0, recvBufferSize: 64 * 1024, log });
    try {
      await t.start(handlers);
      const granted = t.receiveBufferBytes();
      expect(granted).toBeGreaterThanOrEqual(64 * 1024); // Linux reports twice the request
      expect(lines).toEqual([
        {
          level: "info",
          msg: "UDP receive buffer",
          fields: { port: t.address().port, requestedBytes: 65536, grantedBytes: granted },
        },
      ]);
    } finally {
      await t.close();
    }
  });

  it("warns when net.core.rmem_max caps the request", async () => {
    const { log, lines } = recordingLog();
    const requested = 1024 * 1024 * 1024; // beyond any rmem_max a test machine has
    const t = createUdpTransport({ host: "127.0.0.1", port: 0, recvBufferSize: requested, log });
    try {
      await t.start(handlers);
      expect(t.receiveBufferBytes()).toBeLessThan(requested);
      expect(lines.map((l) => l.level)).toEqual(["warn"]);
      expect(lines[0]!.msg).toMatch(/rmem_max/);
      expect(lines[0]!.fields).toMatchObject({ requestedBytes: requested });
    } finally {
      await t.close();
    }
  });
});
