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

/** Moves the track forward by `seconds`, with a small random turn. */
export function advance(track: GpsTrack, seconds: number, random: Random): void {
  const km = (track.speedKmh * seconds) / 3600;
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
