import type { Random } from "./random.ts";

/**
 * A vehicle track for GPS reports. ehome-2.0 §2.9 (A): coordinates are integers in 1/100 arc-second
 * (degrees × 360000), hemisphere in DivisionEW/DivisionNS, Direction with 0 = north, Speed in cm/h.
 */
export interface GpsTrack {
  /** Signed degrees. */
  lon: number;
  lat: number;
  /** Degrees clockwise from north. */
  heading: number;
  /** km/h. */
  speedKmh: number;
  /** Following `gpsPath`: the waypoint being driven to, and the direction along the path. */
  path?: { points: ReadonlyArray<readonly [number, number]>; next: number; step: 1 | -1 };
}

export interface GpsFix {
  divisionEw: "E" | "W";
  longitude: number;
  divisionNs: "N" | "S";
  latitude: number;
  direction: number;
  speed: number;
  satellites: number;
  precision: number;
  height: number;
}

/** Degrees → 1/100 arc-second units. */
export function toArcCentiseconds(degrees: number): number {
  return Math.round(Math.abs(degrees) * 360_000);
}

/** Devices start scattered around Hangzhou (30.27 N, 120.15 E), a few km apart. */
export function startTrack(index: number, random: Random): GpsTrack {
  return {
    lon: 120.15 + ((index % 100) - 50) * 0.01 + random() * 0.005,
    lat: 30.27 + ((Math.floor(index / 100) % 100) - 50) * 0.01 + random() * 0.005,
    heading: Math.floor(random() * 360),
    speedKmh: 20 + Math.floor(random() * 40),
  };
}

/** A track starting on the first waypoint of `points`, heading for the second. */
export function startPathTrack(
  points: ReadonlyArray<readonly [number, number]>,
  random: Random,
): GpsTrack {
  const [lon, lat] = points[0]!;
  const track: GpsTrack = {
    lon,
    lat,
    heading: 0,
    speedKmh: 20 + Math.floor(random() * 40),
    path: { points, next: points.length > 1 ? 1 : 0, step: 1 },
  };
  track.heading = bearing(track, points[track.path!.next]!);
  return track;
}

/** Local flat-earth bearing (degrees clockwise from north) and distance (km) to a waypoint. */
function toward(track: GpsTrack, [lon, lat]: readonly [number, number]) {
  const dy = (lat - track.lat) * 111.32;
  const dx = (lon - track.lon) * 111.32 * Math.cos((track.lat * Math.PI) / 180);
  return { km: Math.hypot(dx, dy), heading: ((Math.atan2(dx, dy) * 180) / Math.PI + 360) % 360 };
}

function bearing(track: GpsTrack, to: readonly [number, number]): number {
  return toward(track, to).heading;
}

/** Drives `km` along the path, turning back at either end. */
function advanceOnPath(track: GpsTrack, km: number): void {
  const path = track.path!;
  if (path.points.length < 2) return;
  let left = km;
  for (let guard = 0; left > 0 && guard < 10_000; guard++) {
    const target = path.points[path.next]!;
    const { km: d, heading } = toward(track, target);
    track.heading = heading;
    if (d > left) {
      const f = left / d;
      track.lon += (target[0] - track.lon) * f;
      track.lat += (target[1] - track.lat) * f;
      return;
    }
    track.lon = target[0];
    track.lat = target[1];
    left -= d;
    if (path.next + path.step < 0 || path.next + path.step >= path.points.length) {
      path.step = path.step === 1 ? -1 : 1;
    }
    path.next += path.step;
  }
}

/** Moves the track forward by `seconds`: along its path, or with a small random turn. */
export function advance(track: GpsTrack, seconds: number, random: Random): void {
  const km = (track.speedKmh * seconds) / 3600;
  if (track.path) {
    advanceOnPath(track, km);
    return;
  }
  const rad = (track.heading * Math.PI) / 180;
  track.lat += (km * Math.cos(rad)) / 111.32;
  track.lon += (km * Math.sin(rad)) / (111.32 * Math.cos((track.lat * Math.PI) / 180));
  track.heading = (track.heading + Math.floor(random() * 21) - 10 + 360) % 360;
}

export function fixOf(track: GpsTrack, random: Random): GpsFix {
  return {
    divisionEw: track.lon >= 0 ? "E" : "W",
    longitude: toArcCentiseconds(track.lon),
    divisionNs: track.lat >= 0 ? "N" : "S",
    latitude: toArcCentiseconds(track.lat),
    direction: Math.round(track.heading),
    speed: track.speedKmh * 100_000,
    satellites: 7 + Math.floor(random() * 6),
    precision: 1,
    height: 10 + Math.floor(random() * 20),
  };
}
