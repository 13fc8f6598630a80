/**
 * The typed client: sends the typed document nodes `npm run codegen` generates from client/operations to a
 * task-tracker server, and turns GraphQL errors into exceptions that carry the contract's error code.
 */
import { print } from 'graphql';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';

export * from './generated/graphql.js';

/** A GraphQL error from the server: `code` is its `extensions.code` (API.md), `extensions` the rest. */
export class TaskTrackerError extends Error {
  override name = 'TaskTrackerError';
  constructor(
    message: string,
    readonly code: string,
    readonly extensions: Record<string, unknown> = {},
    readonly status?: number,
  ) {
    super(message);
  }
}

export interface ClientOptions {
  /** The GraphQL endpoint, e.g. `http://localhost:4000/graphql`. */
  url: string;
  /** A bearer token, when the server has authentication on. */
  token?: string;
  /** Extra headers for every request. */
  headers?: Record<string, string>;
  fetch?: typeof fetch;
}

interface GraphQLResponse<T> {
  data?: T | null;
  errors?: Array<{ message: string; extensions?: Record<string, unknown> }>;
}

/** A client bound to one server. */
export interface TaskTrackerClient {
  /** Runs one operation; resolves with its data, rejects with a {@link TaskTrackerError}. */
  request<TResult, TVariables extends Record<string, unknown>>(document: TypedDocumentNode<TResult, TVariables>, variables?: TVariables): Promise<TResult>;
}

/** Creates a client. */
export function createClient(options: ClientOptions): TaskTrackerClient {
  const doFetch = options.fetch ?? fetch;
  return {
    async request(document, variables) {
      let res: Response;
      try {
        res = await doFetch(options.url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            accept: 'application/graphql-response+json, application/json',
            ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
            ...options.headers,
          },
          body: JSON.stringify({ query: print(document), variables }),
        });
      } catch (err) {
        throw new TaskTrackerError(`Cannot reach ${options.url}: ${(err as Error).message}`, 'UNREACHABLE');
      }
      let body: GraphQLResponse<never>;
      try {
        body = (await res.json()) as GraphQLResponse<never>;
      } catch {
        throw new TaskTrackerError(`${options.url} answered HTTP ${res.status} without a GraphQL response`, 'BAD_RESPONSE', {}, res.status);
      }
      const first = body.errors?.[0];
      if (first) {
        const { code, ...rest } = first.extensions ?? {};
        throw new TaskTrackerError(first.message, typeof code === 'string' ? code : 'INTERNAL_SERVER_ERROR', rest, res.status);
      }
      if (body.data == null) throw new TaskTrackerError(`${options.url} answered HTTP ${res.status} without data`, 'BAD_RESPONSE', {}, res.status);
      return body.data;
    },
  };
}
