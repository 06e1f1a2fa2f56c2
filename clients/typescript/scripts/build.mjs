// Compiles src/ to dist/ (npm's `prepare`: on `npm install` in this folder, `npm pack`, and when a bot
// installs the client from this folder or a checkout of it). npm runs `prepare` of a folder dependency
// without installing that folder's dev dependencies, so the compiler is fetched here first when it is
// missing: the versions of package-lock.json, scripts off.

import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const tsc = path.join(here, "node_modules/typescript/bin/tsc");

if (!existsSync(tsc)) {
  // The outer npm's settings (npm_config_global, _save, _prefix ...) are for the bot's project, not
  // for this folder's own install.
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^npm_(config|package|lifecycle)_/i.test(k)),
  );
  for (const k of ["npm_config_registry", "npm_config_cache", "npm_config_userconfig"])
    if (process.env[k]) env[k] = process.env[k];
  const npm = process.platform === "win32" ? "npm.cmd" : "npm";
  execFileSync(npm, ["ci", "--include=dev", "--ignore-scripts", "--no-audit", "--no-fund"], {
    cwd: here,
    env,
    stdio: ["ignore", "inherit", "inherit"],
  });
}
execFileSync(process.execPath, [tsc, "-p", path.join(here, "tsconfig.json")], {
  cwd: here,
  stdio: ["ignore", "inherit", "inherit"],
});
