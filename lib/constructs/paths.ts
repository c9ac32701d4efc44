import { fileURLToPath } from "node:url";

/** Absolute path of the repository root (the CDK project root and the agent's Docker context). */
export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
