/**
 * Human-readable output of the command line: aligned tables and key/value details.
 */

type Row = Record<string, unknown>;

function text(value: unknown): string {
  if (value === null || value === undefined) return '-';
  if (Array.isArray(value)) return value.map(text).join(', ');
  if (typeof value === 'object') return JSON.stringify(value);
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** Prints rows as a table with the given columns, widths fitted to the content. */
export function printTable(out: (line: string) => void, rows: readonly Row[], columns: string[]): void {
  const cells = rows.map((row) => columns.map((c) => text(row[c])));
  const widths = columns.map((c, i) => Math.min(60, Math.max(c.length, ...cells.map((r) => r[i]!.length))));
  const line = (values: string[]) => values.map((v, i) => (v.length > widths[i]! ? `${v.slice(0, widths[i]! - 1)}…` : v.padEnd(widths[i]!))).join('  ').trimEnd();
  out(line(columns.map((c) => c.toUpperCase())));
  for (const r of cells) out(line(r));
}

/** Prints an object's fields, one per line. */
export function printDetail(out: (line: string) => void, row: Row): void {
  const keys = Object.keys(row).filter((k) => k !== '__typename');
  const width = Math.max(...keys.map((k) => k.length));
  for (const k of keys) out(`${k.padEnd(width)}  ${text(row[k])}`);
}
