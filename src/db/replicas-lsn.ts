/**
 * PostgreSQL WAL positions (`pg_lsn`, written like `16/B374D848`) as numbers that compare: the `x-min-lsn` header
 * carries one, and a replica can serve a request once its replay position has reached it.
 */

const LSN = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

/** Parses `hi/lo` (hex) into a 64-bit position; undefined when the text is not an LSN. */
export function parseLsn(text: string): bigint | undefined {
  const match = LSN.exec(text.trim());
  if (!match) return undefined;
  return (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`);
}

/** Formats a position the way PostgreSQL prints it (`16/B374D848`). */
export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}
