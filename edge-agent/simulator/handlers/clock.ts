/**
 * Device-local time as EHOME writes it: `YYYY-MM-DD HH:MM:SS` (ehome-2.0 §2.5, §2.8). Times are kept
 * as "local epoch" numbers (the local fields read as if they were UTC), so no host time zone leaks in.
 */

const TIME = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})$/;
const ZONE = /^([+-])(\d{2}):?(\d{2})$/;

export function parseDeviceTime(text: string): number | undefined {
  const m = TIME.exec(text.trim());
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const t = Date.UTC(y, mo - 1, d, h, mi, s);
  const back = new Date(t);
  // Reject 2024-02-31 and friends instead of rolling them over.
  if (back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || h > 23 || mi > 59 || s > 59) {
    return undefined;
  }
  return t;
}

export function formatDeviceTime(localMs: number): string {
  const iso = new Date(localMs).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}`;
}

/** `+08:00` / `-0530` → minutes east of UTC. */
export function parseTimeZone(text: string): number | undefined {
  const m = ZONE.exec(text.trim());
  if (!m) return undefined;
  const minutes = Number(m[2]) * 60 + Number(m[3]);
  if (minutes > 14 * 60) return undefined;
  return m[1] === "-" ? -minutes : minutes;
}

/** The device's local clock, as a local-epoch number. */
export function deviceLocalNow(hostNowMs: number, offsetMs: number, timeZone: string): number {
  return hostNowMs + offsetMs + (parseTimeZone(timeZone) ?? 0) * 60_000;
}
