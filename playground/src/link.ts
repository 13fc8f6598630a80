/**
 * Playground links, GraphiQL's convention: `/playground?query=...&variables=...&operationName=...` opens the
 * operation in a tab, ready to run. A link never runs anything by itself and carries no headers, so opening one
 * cannot send a request, let alone one with the user's token.
 */

/** What a link asks the playground to open. */
export interface PlaygroundLink {
  query: string;
  /** The text of the variables editor, as given: variables that are not JSON still open (and the run says why). */
  variables: string | null;
  operationName: string | null;
}

/** A parameter's text; absent for what GraphiQL's storage cannot hold ('', and the words null and undefined). */
function param(params: URLSearchParams, name: string): string | null {
  const value = params.get(name);
  return value === null || value.trim() === '' || value === 'null' || value === 'undefined' ? null : value;
}

/** The link in a page's query string (`location.search`); undefined when it has no query, as a plain visit. */
export function readLink(search: string): PlaygroundLink | undefined {
  const params = new URLSearchParams(search);
  const query = param(params, 'query');
  return query === null ? undefined : { query, variables: param(params, 'variables'), operationName: param(params, 'operationName') };
}

/** `encodeURIComponent`, also escaping `!'()*` so that a link stays whole inside Markdown's `(...)`. */
function encode(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** The link that opens `query` (with `variables` and `operationName` when given) in the playground at `page`. */
export function playgroundLink(page: string, link: { query: string; variables?: string | null; operationName?: string | null }): string {
  const params = [`query=${encode(link.query)}`];
  if (link.variables) params.push(`variables=${encode(link.variables)}`);
  if (link.operationName) params.push(`operationName=${encode(link.operationName)}`);
  return `${page}?${params.join('&')}`;
}
