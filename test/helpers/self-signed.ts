import { execFileSync } from "node:child_process";

/**
 * Writes a self-signed P-256 certificate for localhost and 127.0.0.1 (valid one day; fast to
 * make) and its key to the given files with `openssl`, which `.ci/run` installs when missing.
 */
export function makeSelfSignedCertificate(certFile: string, keyFile: string): void {
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      keyFile,
      "-out",
      certFile,
      "-days",
      "1",
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=DNS:localhost,IP:127.0.0.1",
    ],
    { stdio: "ignore" },
  );
}
