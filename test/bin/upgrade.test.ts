import { describe, expect, it } from "vitest";
import { renderStatus, runUpgradeCli } from "../../bin/upgrade.ts";

const view = (state: string, counts: Record<string, number>) => ({
  campaignId: "c-1",
  targetVersion: "2.0",
  state,
  targetCount: 10,
  counts,
  currentRate: 6,
  ...(state === "running" ? { etaSeconds: 75 } : {}),
});

describe("npm run upgrade", () => {
  it("renders a progress bar of finished devices with per-state counts, rate and ETA", () => {
    const text = renderStatus(view("running", { succeeded: 4, failed: 1, queued: 5 }), 10);
    expect(text).toContain("[████▓░░░░░]  50%  5/10  rate 6/min  ETA 1m15s");
    expect(text).toContain("queued 5  sent 0  downloading 0  upgrading 0  succeeded 4  failed 1");
  });

  it("status redraws until the campaign ends, with the bearer token", async () => {
    const screens = [
      view("running", { queued: 10 }),
      view("running", { succeeded: 5, queued: 5 }),
      view("completed", { succeeded: 10 }),
    ];
    const out: string[] = [];
    const seen: { url: string; auth: string | undefined }[] = [];
    const code = await runUpgradeCli(
      ["status", "c-1"],
      { EHOME_API_URL: "http://api.test/", EHOME_API_TOKEN: "tok" },
      {
        fetch: (async (url: string, init: RequestInit) => {
          seen.push({ url, auth: (init.headers as Record<string, string>).authorization });
          return new Response(JSON.stringify(screens.shift()), { status: 200 });
        }) as typeof fetch,
        out: (t) => out.push(t),
        sleep: async () => {},
        clear: () => {},
      },
    );
    expect(code).toBe(0);
    expect(out).toHaveLength(3);
    expect(out[2]).toContain("[completed]");
    expect(seen[0]).toEqual({ url: "http://api.test/upgrades/c-1", auth: "Bearer tok" });
  });

  it("reports API errors and usage with a non-zero exit code", async () => {
    const out: string[] = [];
    const io = {
      fetch: (async () =>
        new Response(JSON.stringify({ code: "CAMPAIGN_NOT_FOUND", message: "no campaign" }), {
          status: 404,
        })) as unknown as typeof fetch,
      out: (t: string) => out.push(t),
      sleep: async () => {},
      clear: () => {},
    };
    expect(await runUpgradeCli(["status", "x"], {}, io)).toBe(1);
    expect(out[0]).toBe("error: 404 CAMPAIGN_NOT_FOUND: no campaign");
    expect(await runUpgradeCli([], {}, io)).toBe(2);
  });
});
