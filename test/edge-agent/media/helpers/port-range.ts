import { createServer } from "node:net";

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once("error", () => resolve(false));
    s.listen({ port, host: "127.0.0.1", exclusive: true }, () => s.close(() => resolve(true)));
  });
}

/**
 * A range of `n` consecutive loopback ports that were free a moment ago, at a random place below
 * the ephemeral range (so client sockets of other tests do not take them). Never a fixed port.
 */
export async function freePortRange(n: number): Promise<{ min: number; max: number }> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const min = 20_000 + Math.floor(Math.random() * 10_000);
    let ok = true;
    for (let p = min; p < min + n && ok; p++) ok = await canBind(p);
    if (ok) return { min, max: min + n - 1 };
  }
  throw new Error(`no ${n} consecutive free ports found`);
}
