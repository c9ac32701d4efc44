import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../edge-agent/config.ts";

/** HTTPS for device downloads (issue 8 item 7): the agent's own TLS listener, or one in front. */

function errorOf(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error("loadConfig accepted an invalid configuration");
}

describe("agent configuration: HTTPS for device downloads", () => {
  it("is off by default: no listener, downloads stay http", () => {
    const c = loadConfig({});
    expect(c.httpsListen).toBeUndefined();
    expect(c.httpsUrl).toBeUndefined();
  });

  it("a certificate and key start a listener on 8443, and download URLs point at it", () => {
    const c = loadConfig({
      EHOME_PUBLIC_HOST: "203.0.113.7",
      EHOME_HTTPS_CERT_FILE: "/etc/ehome/cert.pem",
      EHOME_HTTPS_KEY_FILE: "/etc/ehome/key.pem",
    });
    expect(c.httpsListen).toEqual({
      port: 8443,
      certFile: "/etc/ehome/cert.pem",
      keyFile: "/etc/ehome/key.pem",
    });
    expect(c.httpsUrl).toEqual({ host: "203.0.113.7", port: 8443 });
  });

  it("the URL's host and port can name what the certificate covers and what devices reach", () => {
    const c = loadConfig({
      EHOME_HTTPS_CERT_FILE: "c.pem",
      EHOME_HTTPS_KEY_FILE: "k.pem",
      EHOME_HTTPS_PORT: "0",
      EHOME_HTTPS_PUBLIC_HOST: "devices.example.com",
      EHOME_HTTPS_PUBLIC_PORT: "443",
    });
    expect(c.httpsListen?.port).toBe(0);
    expect(c.httpsUrl).toEqual({ host: "devices.example.com", port: 443 });
  });

  it("a public port alone means TLS ends in front of the agent: https URLs, no listener", () => {
    const c = loadConfig({
      EHOME_HTTPS_PUBLIC_HOST: "devices.example.com",
      EHOME_HTTPS_PUBLIC_PORT: "8443",
    });
    expect(c.httpsListen).toBeUndefined();
    expect(c.httpsUrl).toEqual({ host: "devices.example.com", port: 8443 });
  });

  it("refuses a certificate without a key (and the reverse), naming the missing variable", () => {
    expect(errorOf({ EHOME_HTTPS_CERT_FILE: "c.pem" }).variable).toBe("EHOME_HTTPS_KEY_FILE");
    expect(errorOf({ EHOME_HTTPS_KEY_FILE: "k.pem" }).variable).toBe("EHOME_HTTPS_CERT_FILE");
  });

  it("refuses a free listener port without a public port, and bad ports or hosts", () => {
    const tls = { EHOME_HTTPS_CERT_FILE: "c.pem", EHOME_HTTPS_KEY_FILE: "k.pem" };
    expect(errorOf({ ...tls, EHOME_HTTPS_PORT: "0" }).variable).toBe("EHOME_HTTPS_PUBLIC_PORT");
    expect(errorOf({ ...tls, EHOME_HTTPS_PORT: "70000" }).variable).toBe("EHOME_HTTPS_PORT");
    expect(errorOf({ EHOME_HTTPS_PUBLIC_PORT: "0" }).variable).toBe("EHOME_HTTPS_PUBLIC_PORT");
    expect(errorOf({ EHOME_HTTPS_PUBLIC_PORT: "x" }).variable).toBe("EHOME_HTTPS_PUBLIC_PORT");
    expect(
      errorOf({ EHOME_HTTPS_PUBLIC_PORT: "443", EHOME_HTTPS_PUBLIC_HOST: "https://x" }).variable,
    ).toBe("EHOME_HTTPS_PUBLIC_HOST");
  });
});
