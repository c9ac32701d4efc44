/**
 * Entry of one worker process of runSimulatorWorkers(): plays its slice of the devices and answers
 * the parent over IPC. It exits when told to close or when the parent goes away.
 */
import { createSimulator, type Simulator } from "./simulator.ts";
import { emptySnapshot } from "./stats.ts";
import type { ParentMessage, WorkerMessage } from "./worker-protocol.ts";

function send(message: WorkerMessage): void {
  // The callback swallows EPIPE when the parent is already gone.
  if (process.connected) process.send?.(message, undefined, {}, (err) => void err);
}

function run(): void {
  let sim: Simulator | null = null;
  let starting: Promise<void> | null = null;
  let closing = false;

  const shutdown = async (waitForStart = true) => {
    if (closing) return;
    closing = true;
    // Give up on a stuck close rather than leave an orphan behind.
    setTimeout(() => process.exit(0), 5000).unref();
    if (waitForStart) await starting?.catch(() => {});
    await sim?.close();
    send({ type: "closed", snapshot: sim?.snapshot() ?? emptySnapshot() });
    if (process.connected) process.disconnect();
  };

  process.on("message", (m: ParentMessage) => {
    switch (m.type) {
      case "start":
        starting = (async () => {
          try {
            sim = await createSimulator(m.options);
            if (closing) return;
            await sim.start();
            send({ type: "ready", devices: sim.devices.length });
          } catch (err) {
            send({ type: "error", message: (err as Error).message });
            await shutdown(false);
          }
        })();
        return;
      case "snapshot":
        send({ type: "snapshot", id: m.id, snapshot: sim?.snapshot() ?? emptySnapshot() });
        return;
      case "close":
        void shutdown();
        return;
    }
  });
  // Ctrl-C reaches the whole process group: the parent decides when workers close, so they can
  // report their final numbers first.
  process.on("SIGINT", () => {});
  process.on("disconnect", () => void shutdown());
}

run();
