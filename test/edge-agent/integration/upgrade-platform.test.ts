import { createHash, randomBytes } from "node:crypto";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { describe, expect, it } from "vitest";
import { CommandResult } from "../../../lib/contracts/commands.ts";
import { ENV } from "../../../lib/contracts/env.ts";
import { firmwareObjectKey } from "../../../lib/contracts/storage.ts";
import { mintFirmwareToken, parseFirmwareTokenKey } from "../../../lib/contracts/upgrades.ts";
import { eventually, usePlatform } from "../../e2e/helpers/platform.ts";

/**
 * The agent part of upgrades as `npm start` composes it (bin/local-platform.ts): the token key the
 * runner hands the functions verifies on the agent, /fw/ streams from the local media bucket on the
 * bound HTTP port, and a simulator device upgraded by a firmware-update command is listed with the
 * new version by the API.
 */

const p = usePlatform({
  agentEnv: { EHOME_PUBLIC_HOST: "127.0.0.1", EHOME_KEEPALIVE_SECONDS: "1" },
});

describe("firmware upgrade on the npm start platform", () => {
  it("a firmware-update with an engine-minted token upgrades a simulator device", async () => {
    const { platform, backends, agent } = p();
    const image = randomBytes(64_000);
    await backends.clients.s3.send(
      new PutObjectCommand({
        Bucket: backends.resources.bucket,
        Key: firmwareObjectKey("fw-platform"),
        Body: image,
      }),
    );
    const sim = await p().simulator({
      devices: 1,
      idPrefix: "upg-",
      upgradeDownload: true,
      upgradeMs: 50,
    });
    await sim.start();
    await sim.waitFor("all-online", 10_000);
    const device = sim.devices[0]!;
    // What the engine does: mint with the key the runner put in the functions' environment.
    const key = parseFirmwareTokenKey(platform.env[ENV.FIRMWARE_TOKEN_KEY]!);
    const result = await agent.commands.execute({
      commandId: "upg-1",
      deviceId: device.id,
      type: "firmware-update",
      params: {
        token: mintFirmwareToken(key, {
          deviceId: device.id,
          campaignId: "camp-platform",
          firmwareId: "fw-platform",
          expiresAt: Math.floor(Date.now() / 1000) + 600,
        }),
        fileSize: image.length,
        md5: createHash("md5").update(image).digest("hex"),
        version: "V9.9.9 build 260101",
      },
      deadline: Date.now() + 10_000,
    });
    expect(CommandResult.parse(result).state).toBe("succeeded");
    const listed = await eventually(
      async () => {
        const res = await p().api<{ firmwareVersion?: string }>("GET", `/devices/${device.id}`);
        return res.body.firmwareVersion === "V9.9.9 build 260101" ? res.body : undefined;
      },
      { timeoutMs: 10_000 },
    );
    expect(listed.firmwareVersion).toBe("V9.9.9 build 260101");
    expect(sim.stats()).toMatchObject({ firmwareDownloads: 1, firmwareBytes: image.length });
  });
});
