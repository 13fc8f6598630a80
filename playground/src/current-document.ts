/**
 * GraphiQL hands the fetcher the editor's parsed document and selected operation name, which it refreshes a moment
 * after the text changes: run a tab right after switching to it and the fetcher sees the previous tab's, so a
 * subscription is taken for a query and sent over HTTP (which refuses it), or the previous tab's operation name is
 * sent with a document that has no such operation (which the server refuses too). Parsing the text being sent
 * decides by what runs.
 */
import type { Fetcher } from '@graphiql/toolkit';
import { Kind, parse, type DocumentNode } from 'graphql';

function parsed(query: string): DocumentNode | undefined {
  try {
    return parse(query);
  } catch {
    return undefined; // the server answers the syntax error
  }
}

/** The name to send: a document with one operation runs that one; with several, GraphiQL's choice. */
function operationName(document: DocumentNode | undefined, chosen: string | null | undefined): string | null | undefined {
  const operations = document?.definitions.filter((definition) => definition.kind === Kind.OPERATION_DEFINITION) ?? [];
  return operations.length === 1 ? operations[0]?.name?.value : chosen;
}

/** Wraps `fetcher` so that it routes (HTTP or WebSocket) and names the operation by the document actually sent. */
export function byCurrentDocument(fetcher: Fetcher): Fetcher {
  return (params, options) => {
    const document = parsed(params.query);
    return fetcher({ ...params, operationName: operationName(document, params.operationName) }, { ...options, documentAST: document ?? options?.documentAST });
  };
}
