import { readFileSync } from "node:fs";
import { createSecureContext } from "node:tls";
import { type AgentConfig, ConfigError } from "../config.ts";
import {
  createDeviceHttpServer,
  type DeviceHttpDeps,
  type DeviceHttpServer,
} from "./device-http.ts";

/**
 * The device routes over TLS (issue 8 item 7), for every composition root (`npm run agent`,
 * `npm start`): reads `EHOME_HTTPS_CERT_FILE` / `EHOME_HTTPS_KEY_FILE` once at start-up and
 * builds the second device HTTP server on `EHOME_HTTPS_PORT` with the same routes. Undefined when
 * no certificate is configured.
 */

/** Reads and checks the PEM pair; a ConfigError names the variables when it cannot be used. */
export function loadDeviceTls(files: { certFile: string; keyFile: string }): {
  cert: Buffer;
  key: Buffer;
} {
  try {
    const tls = { cert: readFileSync(files.certFile), key: readFileSync(files.keyFile) };
    // A bad PEM, or a key that does not match the certificate, fails here rather than later.
    createSecureContext(tls);
    return tls;
  } catch (err) {
    throw new ConfigError(
      "EHOME_HTTPS_CERT_FILE",
      `with EHOME_HTTPS_KEY_FILE: ${(err as Error).message}`,
    );
  }
}

export function createDeviceHttpsServer(
  config: Pick<AgentConfig, "host" | "httpsListen">,
  deps: DeviceHttpDeps,
): DeviceHttpServer | undefined {
  const listen = config.httpsListen;
  if (!listen) return undefined;
  return createDeviceHttpServer(
    // Uploads of up to EHOME_MAX_VIDEO_BYTES need more than the default 30 s, as on HTTP.
    {
      host: config.host,
      port: listen.port,
      requestTimeoutMs: 10 * 60_000,
      tls: loadDeviceTls(listen),
    },
    deps,
  );
}
