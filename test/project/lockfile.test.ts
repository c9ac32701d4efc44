import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

// `npm ci` refuses a lock file that names an optional dependency it does not list itself.
// CI failed that way once: the registry mirror lacked most platform packages of
// @biomejs/biome 2.6.8, so the lock held two of its ten. Catch it here, before CI does.
interface Deps {
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}

const read = (file: string): unknown =>
  JSON.parse(readFileSync(new URL(`../../${file}`, import.meta.url), "utf8"));
const lock = read("package-lock.json") as { packages: Record<string, Deps> };
const manifest = read("package.json") as Deps;

// Node's lookup: the package's own node_modules, then each enclosing node_modules up to the root.
function resolves(from: string, name: string): boolean {
  let dir = from;
  for (;;) {
    if (`${dir}/node_modules/${name}` in lock.packages) return true;
    const up = dir.lastIndexOf("/node_modules/");
    if (up < 0) return `node_modules/${name}` in lock.packages;
    dir = dir.slice(0, up);
  }
}

describe("package-lock.json", () => {
  it("lists every optional dependency that a locked package declares", () => {
    const missing: string[] = [];
    for (const [path, pkg] of Object.entries(lock.packages)) {
      if (path === "") continue;
      for (const name of Object.keys(pkg.optionalDependencies ?? {})) {
        if (!resolves(path, name)) missing.push(`${path} -> ${name}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it("records the dependencies package.json declares", () => {
    const root = lock.packages[""] ?? {};
    expect(root.dependencies ?? {}).toEqual(manifest.dependencies ?? {});
    expect(root.devDependencies ?? {}).toEqual(manifest.devDependencies ?? {});
  });
});
