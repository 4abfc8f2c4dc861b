/**
 * Validation helpers for options. Every public option is checked when the object that takes it is
 * built, and a bad value raises {@link InvalidOptionError} naming the option.
 *
 * @module
 */
import { InvalidOptionError } from "./errors.ts";

function show(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value) : String(value);
}

/** Checks that `value` is an integer in `[min, max]`; returns it. */
export function checkInt(name: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer in [${min}, ${max}]`;
    throw new InvalidOptionError(name, `must be ${range} (got ${show(value)})`);
  }
  return value;
}

/** Checks an optional integer option; returns `fallback` when `value` is undefined. */
export function optInt(
  name: string,
  value: unknown,
  fallback: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  return value === undefined ? fallback : checkInt(name, value, min, max);
}

/** Checks a duration in milliseconds (`0` means "off" where `allowZero`). */
export function checkMs(name: string, value: unknown, allowZero: boolean): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
    throw new InvalidOptionError(
      name,
      `must be a duration in milliseconds ${allowZero ? ">= 0 (0 disables it)" : "> 0"} (got ${show(value)})`,
    );
  }
  return value;
}

/** Checks an optional duration in milliseconds; returns `fallback` when `value` is undefined. */
export function optMs(name: string, value: unknown, fallback: number, allowZero: boolean): number {
  return value === undefined ? fallback : checkMs(name, value, allowZero);
}

/** Checks an optional boolean option; returns `fallback` when `value` is undefined. */
export function optBool(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== "boolean") throw new InvalidOptionError(name, `must be a boolean (got ${show(value)})`);
  return value;
}

/** Checks a TCP/UDP port number (0 = any free port). */
export function checkPort(name: string, value: unknown): number {
  return checkInt(name, value, 0, 65535);
}

/** Checks a non-empty string. */
export function checkString(name: string, value: unknown): string {
  if (typeof value !== "string" || value.length === 0) {
    throw new InvalidOptionError(name, `must be a non-empty string (got ${show(value)})`);
  }
  return value;
}

/** Checks that `value` is one of `allowed`. */
export function checkOneOf<T extends string | number>(name: string, value: unknown, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) {
    throw new InvalidOptionError(name, `must be one of ${allowed.map(show).join(", ")} (got ${show(value)})`);
  }
  return value as T;
}

/** Checks that a callback option is a function. */
export function checkFunction(name: string, value: unknown): void {
  if (typeof value !== "function") throw new InvalidOptionError(name, `must be a function (got ${typeof value})`);
}

/** Rejects keys that are not in `known`, so a misspelt option never passes silently. */
export function checkKnownKeys(where: string, options: object, known: readonly string[]): void {
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      throw new InvalidOptionError(`${where}.${key}`, `unknown option; known options are ${known.join(", ")}`);
    }
  }
}
