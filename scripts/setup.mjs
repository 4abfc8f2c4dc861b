// Installs what the project needs on a machine that has only Node.js and npm: the dev dependencies
// (root package.json) and the pinned Deno and Bun binaries (.tools/package.json, kept apart because Deno
// resolves every dependency listed in the root package.json). Idempotent and quiet when all is present.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const tools = join(root, ".tools");
const bin = join(tools, "node_modules", ".bin");

/** Absolute path of the pinned `deno` binary (or $GETTY_DENO when set). */
export const deno = process.env.GETTY_DENO ?? join(bin, "deno");
/** Absolute path of the pinned `bun` binary (or $GETTY_BUN when set). */
export const bun = process.env.GETTY_BUN ?? join(bin, "bun");

function npm(args, cwd) {
  execFileSync("npm", [...args, "--no-audit", "--no-fund", "--loglevel=error"], { cwd, stdio: "inherit" });
}

/** Installs missing dependencies and runtimes. */
export function setup() {
  if (!existsSync(join(root, "node_modules", "bun-types"))) {
    console.error("setup: installing dev dependencies (npm ci)");
    npm(["ci"], root);
  }
  if (!process.env.GETTY_DENO && !existsSync(deno) || !process.env.GETTY_BUN && !existsSync(bun)) {
    console.error("setup: installing pinned deno and bun from npm into .tools/");
    npm(["install"], tools);
  }
  return { deno, bun };
}

if (import.meta.url === `file://${process.argv[1]}`) setup();
