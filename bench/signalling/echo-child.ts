/**
 * The same-run baseline: a raw Node UDP echo (no decode, no state) with the agent adapter's
 * SO_RCVBUF, sending the way the adapter does (address + completion callback), in its own process
 * like the agent. It answers each datagram with its own bytes to the observed source address, so
 * the generators time it exactly as they time the agent.
 */
import { createSocket } from "node:dgram";
import { DEFAULT_RECV_BUFFER } from "../../edge-agent/signalling/server.ts";
import { serveParent } from "../lib/child.ts";
import { settledMemory } from "./memory.ts";
import type { ServerCounters, ServerReady, ServerRequest } from "./protocol.ts";

async function main(): Promise<void> {
  const socket = createSocket({ type: "udp4", recvBufferSize: DEFAULT_RECV_BUFFER });
  let datagramsIn = 0;
  let datagramsOut = 0;
  let sendErrors = 0;
  const onSent = (err: Error | null) => {
    if (err) sendErrors++;
  };
  socket.on("message", (msg, rinfo) => {
    datagramsIn++;
    socket.send(msg, rinfo.port, rinfo.address, onSent);
    datagramsOut++;
  });
  socket.on("error", () => {
    sendErrors++;
  });
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));

  const counters = (): ServerCounters => {
    const cpu = process.cpuUsage();
    return {
      datagramsIn,
      datagramsOut,
      keepalives: 0,
      keepalivesUnknown: 0,
      decodeErrors: 0,
      sendErrors,
      sessions: 0,
      cpuUs: cpu.user + cpu.system,
    };
  };

  const ready: ServerReady = { host: "127.0.0.1", port: socket.address().port, pid: process.pid };
  serveParent(ready, {
    handle(body) {
      const m = body as ServerRequest;
      switch (m.type) {
        case "memory":
          return settledMemory(0);
        case "counters":
          return counters();
        default:
          throw new Error(`unknown request ${(m as { type: string }).type}`);
      }
    },
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  });
}

await main();
