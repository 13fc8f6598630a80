/**
 * GraphiQL hands the fetcher the editor's parsed document, which it refreshes a moment after the text changes:
 * run a tab right after switching to it and the fetcher sees the previous tab's document, so a subscription is
 * taken for a query and sent over HTTP (which refuses it). Parsing the text being sent decides by what runs.
 */
import type { Fetcher } from '@graphiql/toolkit';
import { parse, type DocumentNode } from 'graphql';

function parsed(query: string): DocumentNode | undefined {
  try {
    return parse(query);
  } catch {
    return undefined; // the server answers the syntax error
  }
}

/** Wraps `fetcher` so that it routes (HTTP or WebSocket) by the document actually sent. */
export function byCurrentDocument(fetcher: Fetcher): Fetcher {
  return (params, options) => fetcher(params, { ...options, documentAST: parsed(params.query) ?? options?.documentAST });
}
