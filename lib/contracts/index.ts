/** One import for everything that crosses the edge–cloud line (architecture §2, "one source of truth"). */
export * from "./agent-messages.ts";
export * from "./alarms.ts";
export * from "./commands.ts";
export * from "./env.ts";
export * from "./errors.ts";
export * from "./events.ts";
export * from "./media.ts";
export * from "./pictures.ts";
export * from "./ports.ts";
export * from "./queues.ts";
export * from "./storage.ts";
export * from "./tables.ts";
export * from "./upgrades.ts";
