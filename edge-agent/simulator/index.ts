/**
 * The EHOME 2.0 device simulator: plays N devices against an agent, as a library (tests, benches)
 * and through cli.ts. See docs/simulator.md.
 */

export type { AlarmSpec, RaisedAlarm } from "./alarms.ts";
export type { LatencySummary } from "./histogram.ts";
export { BASE_PTS, type BuildPsOptions, buildPs, createPsWriter, packSizes } from "./media-ps.ts";
export {
  type ControlRecord,
  type ForcedIdr,
  type MediaEndReason,
  type MediaKind,
  type MediaSessionInfo,
  PLAYBACK_CONTROLS,
  type PlaybackControl,
} from "./media-push.ts";
export {
  type AccessUnit,
  FIXTURE_NAMES,
  type FixtureFacts,
  type FixtureName,
  loadFixture,
  type MediaFixture,
  padFixture,
  readFixtureFacts,
  splitAccessUnits,
} from "./media-source.ts";
export {
  type AgentAddress,
  type EncodingChoice,
  type PtzChoice,
  type ResolvedOptions,
  resolveOptions,
  type SimulatorOptions,
  SimulatorOptionsError,
  UPLOAD_ORDERS,
  type UploadOrder,
} from "./options.ts";
export type { DeviceProfile } from "./profile.ts";
export { type Random, seededRandom } from "./random.ts";
export {
  createRecordStore,
  type RecordInfo,
  type RecordStore,
  recordLine,
  recordName,
} from "./records.ts";
export {
  createSimulator,
  type Simulator,
  SimulatorBindError,
  SimulatorClosedError,
  type SimulatorDeps,
  SimulatorTimeoutError,
  type WaitCondition,
} from "./simulator.ts";
export {
  type Counters,
  DEVICE_STATES,
  type DeviceState,
  type SimulatorStats,
  type StatsSnapshot,
} from "./stats.ts";
export type { ReceivedCommand, SimulatedDevice, SimulatorEvents } from "./types.ts";
export {
  runSimulatorWorkers,
  type SimulatorWorkers,
  type WorkerDeps,
  type WorkersWaitCondition,
} from "./workers.ts";
