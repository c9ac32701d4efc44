import { describe, expect, it } from "vitest";
import {
  ALARM_MEDIA_DEADLINE_VARIABLE,
  alarmsConfigFromEnv,
  createAlarmsHandlerFromEnv,
} from "../../../functions/alarms/handler.ts";
import { DEFAULT_ALARMS_CONFIG } from "../../../functions/alarms/service.ts";
import { ConfigError } from "../../../functions/shared/env.ts";

describe("alarms function settings", () => {
  it("waits 120 s for an alarm's media by default; ALARM_MEDIA_DEADLINE_SECONDS changes it", () => {
    expect(alarmsConfigFromEnv({}).mediaDeadlineSeconds).toBe(120);
    expect(DEFAULT_ALARMS_CONFIG.mediaDeadlineSeconds).toBe(120);
    expect(
      alarmsConfigFromEnv({ [ALARM_MEDIA_DEADLINE_VARIABLE]: "30" }).mediaDeadlineSeconds,
    ).toBe(30);
  });

  it("refuses a deadline that is not 1-86400 whole seconds, naming the variable", () => {
    for (const bad of ["0", "-5", "1.5", "ten", "86401"]) {
      expect(() => alarmsConfigFromEnv({ [ALARM_MEDIA_DEADLINE_VARIABLE]: bad })).toThrow(
        ConfigError,
      );
    }
    expect(() => alarmsConfigFromEnv({ [ALARM_MEDIA_DEADLINE_VARIABLE]: "0" })).toThrow(
      /ALARM_MEDIA_DEADLINE_SECONDS/,
    );
  });

  it("names every missing table variable at composition", () => {
    expect(() => createAlarmsHandlerFromEnv({ ALARMS_TABLE: "a" })).toThrow(
      /ALARM_MEDIA_TABLE, CAPTURES_TABLE/,
    );
  });
});
