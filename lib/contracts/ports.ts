/**
 * Default ports of the edge agent. The CDK edge stack opens exactly these (load balancer
 * listeners, security group), and the agent binds them unless configured otherwise.
 */
export const PORTS = {
  /** EHOME 2.0 signalling: REGISTER, KEEPALIVE, commands (UDP). */
  signallingUdp: 7660,
  /** Alarm reports (UDP). */
  alarmUdp: 7332,
  /** Device-facing HTTP: picture/video upload, firmware short URLs, `/healthz` (TCP). */
  deviceHttpTcp: 8660,
  /**
   * Device-facing HTTPS (TCP): the same routes over TLS, for `https://` firmware and other
   * downloads. On AWS the load balancer's TLS listener on this port forwards to `deviceHttpTcp`;
   * locally the agent serves it itself when given a certificate.
   */
  deviceHttpsTcp: 8443,
  /** Viewer-facing HTTP: stream URLs with signed tokens (TCP). */
  viewerHttpTcp: 8661,
  /**
   * Media pool, inclusive on both ends, TCP and UDP. Reached directly on the agent task's public
   * address, never through the load balancer (an NLB has at most 50 listeners; architecture §7).
   */
  mediaPool: { min: 31000, max: 31999 },
} as const;

/** Path the load balancer and the container health check probe on the device HTTP port. */
export const HEALTH_CHECK_PATH = "/healthz";
