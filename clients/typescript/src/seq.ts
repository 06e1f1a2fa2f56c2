// Seqs as callers hold them. The journal's `seq` is a PostgreSQL bigint: Prisma reads it as `bigint`,
// node-postgres as a decimal string, a JSON file as a number. The client takes any of them and works
// with a plain number (seqs stay far below 2^53: a million events a second for 285 years).

/** A seq as a cursor store may hand it back: a number, a `bigint` (Prisma), a decimal string (pg). */
export type SeqLike = number | bigint | string;

/** The seq as a number, or an Error saying what was wrong with it (never throws). */
export function toSeq(v: SeqLike, what: string): number | Error {
  if (typeof v === "number") {
    if (Number.isSafeInteger(v) && v >= 0) return v;
    return new Error(`${what} must be a whole number >= 0, got ${String(v)}`);
  }
  if (typeof v === "bigint") {
    if (v >= 0n && v <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(v);
    return new Error(`${what} is out of range: ${v.toString()}`);
  }
  if (typeof v === "string" && /^\d{1,16}$/.test(v)) {
    const n = Number(v);
    if (Number.isSafeInteger(n)) return n;
  }
  return new Error(`${what} must be a seq (number, bigint or decimal string), got ${describe(v)}`);
}

function describe(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  if (v === null) return "null";
  return typeof v;
}
