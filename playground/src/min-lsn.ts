/**
 * Read-your-writes for the playground, as the typed client does it: a server with read replicas answers each
 * mutation with an `x-min-lsn` header (the WAL position its commit reached); this fetch keeps the highest one it
 * has seen and sends it with every later request, so a query run right after a mutation shows that mutation's
 * effect even when a replica serves the query.
 */

const HEADER = 'x-min-lsn';

/** `hi/lo` hex (PostgreSQL's pg_lsn) as a number; undefined when not one. */
function lsnValue(text: string): bigint | undefined {
  const match = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text.trim());
  return match ? (BigInt(`0x${match[1]}`) << BigInt(32)) | BigInt(`0x${match[2]}`) : undefined;
}

/** Wraps `base` so that requests carry the highest `x-min-lsn` received so far (unless the user set one). */
export function minLsnFetch(base: typeof fetch): typeof fetch {
  let last: { text: string; value: bigint } | undefined;
  return async (input, init) => {
    const headers = new Headers(init?.headers);
    if (last && !headers.has(HEADER)) headers.set(HEADER, last.text);
    const response = await base(input, { ...init, headers });
    const received = response.headers.get(HEADER);
    const value = received === null ? undefined : lsnValue(received);
    if (received !== null && value !== undefined && (!last || value > last.value)) last = { text: received.trim(), value };
    return response;
  };
}
