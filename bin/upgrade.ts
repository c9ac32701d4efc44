/**
 * Upgrade campaigns for people: `npm run upgrade -- <command>`.
 *
 *   status <campaignId> [--once]   live progress bar and per-state counts (until the campaign ends)
 *   devices <campaignId>           per-device state, attempt, bytes served, last message
 *   list                           every campaign
 *   cancel <campaignId>            stop dispatching; queued devices are canceled
 *
 * Talks to the HTTP API at EHOME_API_URL (default http://127.0.0.1:3000, `npm start`) with
 * `Authorization: Bearer $EHOME_API_TOKEN`.
 */
import { pathToFileURL } from "node:url";

// biome-ignore lint/suspicious/noExplicitAny: API JSON, printed as is
type Json = any;

const FINAL_CAMPAIGN = new Set(["completed", "canceled", "aborted"]);
const STATE_ORDER = [
  "queued",
  "sent",
  "downloading",
  "upgrading",
  "succeeded",
  "failed",
  "timed-out",
  "skipped",
  "canceled",
] as const;

/** One status screen: a bar of finished devices, counts per state, rate and ETA. */
export function renderStatus(view: Json, width = 40): string {
  const counts: Record<string, number> = view.counts ?? {};
  const total = view.targetCount || 1;
  const done =
    (counts.succeeded ?? 0) +
    (counts.failed ?? 0) +
    (counts["timed-out"] ?? 0) +
    (counts.skipped ?? 0) +
    (counts.canceled ?? 0);
  const filled = Math.round((done / total) * width);
  const ok = Math.round((((counts.succeeded ?? 0) + (counts.skipped ?? 0)) / total) * width);
  const bar = "█".repeat(Math.min(ok, filled)) + "▓".repeat(Math.max(0, filled - ok));
  const percent = Math.floor((done / total) * 100);
  const eta =
    view.etaSeconds === undefined
      ? ""
      : `  ETA ${Math.floor(view.etaSeconds / 60)}m${String(view.etaSeconds % 60).padStart(2, "0")}s`;
  const lines = [
    `campaign ${view.campaignId}  → ${view.targetVersion}  [${view.state}]`,
    `[${bar.padEnd(width, "░")}] ${String(percent).padStart(3)}%  ${done}/${view.targetCount}  rate ${view.currentRate}/min${eta}`,
    STATE_ORDER.map((s) => `${s} ${counts[s] ?? 0}`).join("  "),
  ];
  if (view.abortReason) lines.push(`aborted: ${view.abortReason}`);
  return lines.join("\n");
}

export function renderDevices(items: Json[]): string {
  return items
    .map(
      (e) =>
        `${String(e.deviceId).padEnd(24)} ${String(e.state).padEnd(12)} #${e.attempt}  ${String(e.bytesServed).padStart(10)} B  ${e.lastMessage ?? ""}`,
    )
    .join("\n");
}

export interface CliIo {
  fetch: typeof fetch;
  out: (text: string) => void;
  sleep: (ms: number) => Promise<void>;
  /** Clears the previous screen (a terminal escape) before a redraw; no-op when not a TTY. */
  clear: () => void;
}

export async function runUpgradeCli(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  io: CliIo,
  options: { intervalMs?: number } = {},
): Promise<number> {
  const base = (env.EHOME_API_URL?.trim() || "http://127.0.0.1:3000").replace(/\/$/, "");
  const token = env.EHOME_API_TOKEN?.trim();
  const call = async (method: string, path: string): Promise<Json> => {
    const res = await io.fetch(`${base}${path}`, {
      method,
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });
    const body = (await res.json()) as Json;
    if (!res.ok) throw new Error(`${res.status} ${body.code}: ${body.message}`);
    return body;
  };
  const [command, id] = argv;
  try {
    switch (command) {
      case "status": {
        if (!id) throw new Error("usage: status <campaignId> [--once]");
        for (;;) {
          const view = await call("GET", `/upgrades/${encodeURIComponent(id)}`);
          io.clear();
          io.out(renderStatus(view));
          if (argv.includes("--once") || FINAL_CAMPAIGN.has(view.state)) return 0;
          await io.sleep(options.intervalMs ?? 2000);
        }
      }
      case "devices": {
        if (!id) throw new Error("usage: devices <campaignId>");
        let cursor: string | undefined;
        do {
          const page = await call(
            "GET",
            `/upgrades/${encodeURIComponent(id)}/devices?limit=200${cursor ? `&cursor=${cursor}` : ""}`,
          );
          io.out(renderDevices(page.items));
          cursor = page.nextCursor;
        } while (cursor);
        return 0;
      }
      case "list": {
        const { items } = await call("GET", "/upgrades");
        for (const view of items) io.out(`${renderStatus(view, 20)}\n`);
        return 0;
      }
      case "cancel": {
        if (!id) throw new Error("usage: cancel <campaignId>");
        io.out(renderStatus(await call("POST", `/upgrades/${encodeURIComponent(id)}/cancel`)));
        return 0;
      }
      default:
        io.out(
          "usage: npm run upgrade -- status <id> [--once] | devices <id> | list | cancel <id>",
        );
        return 2;
    }
  } catch (error) {
    io.out(`error: ${(error as Error).message}`);
    return 1;
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const tty = process.stdout.isTTY === true;
  runUpgradeCli(process.argv.slice(2), process.env, {
    fetch,
    out: (text) => process.stdout.write(`${text}\n`),
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    clear: () => {
      if (tty) process.stdout.write("\x1b[2J\x1b[H");
    },
  }).then((code) => {
    process.exitCode = code;
  });
}
