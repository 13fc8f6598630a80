/**
 * The `/graphql` endpoint of an app: registers each request as an in-flight operation, authenticates the caller
 * (when authentication is on), runs the operation through Apollo, and reports it when its execution has ended.
 */
import type { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ApolloServer } from '@apollo/server';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Authenticator, Principal } from '../auth/authenticator.js';
import type { Operation, OperationRegistry } from '../lifecycle/operations.js';
import type { ReplicaRouter } from '../db/replicas.js';
import { parseLsn } from '../db/replicas-lsn.js';
import { createContext, type AppServices, type GraphQLContext } from './context.js';
import { AppError } from '../errors.js';
import { toGraphQLError } from './errors.js';
import { graphqlHandler } from './handler.js';

/** Emitted as `operation` after each GraphQL operation. */
export interface OperationReport {
  requestId: string;
  name: string;
  type: string;
  durationMs: number;
  sqlStatements: number;
  /** `extensions.code` of each error in the response; empty on success. */
  errorCodes: string[];
  /** HTTP status of the response. */
  status: number;
}

export interface EndpointOptions {
  operations: OperationRegistry;
  events: EventEmitter;
  authenticator: Authenticator | undefined;
  /** The address a request comes from (`TRUST_PROXY`), for rate limiting when there is no authenticated subject. */
  clientAddress: (request: IncomingMessage) => string;
  operationTimeoutMs: number;
  /** Read routing across replicas (DATABASE_REPLICA_URLS); undefined without replicas. */
  replicas?: ReplicaRouter | undefined;
}

/** The request header a client sends back, and the response header a write answers with. */
export const MIN_LSN_HEADER = 'x-min-lsn';

/** The `x-min-lsn` a request carries, if any. */
function requestedMinLsn(request: FastifyRequest): bigint | undefined {
  const value = request.headers[MIN_LSN_HEADER];
  if (value === undefined) return undefined;
  const lsn = typeof value === 'string' ? parseLsn(value) : undefined;
  if (lsn === undefined) {
    const message = `The ${MIN_LSN_HEADER} header must be a WAL position like 0/16B3748: send back the value a response gave you`;
    throw new AppError('BAD_REQUEST', message, {}, { status: 400 });
  }
  return lsn;
}


export class GraphQLEndpoint {
  private run: ReturnType<typeof graphqlHandler> | undefined;
  private readonly callers = new WeakMap<FastifyRequest, { operation: Operation; principal: Principal | undefined; rateKey: string }>();

  constructor(private readonly options: EndpointOptions) {}

  /** Connects the endpoint to a started Apollo server and the ORM's root EntityManager. */
  attach(apollo: ApolloServer<GraphQLContext>, root: EntityManager, services: AppServices): void {
    const context = async (request: FastifyRequest) => {
      const caller = this.callers.get(request);
      if (!caller) throw new Error('GraphQL request without a registered operation');
      try {
        return createContext(root, caller.operation, request.log, services, caller);
      } catch (err) {
        // Apollo reads a context failure's HTTP status from a GraphQLError only; no plugin hook sees the failure.
        throw err instanceof AppError ? toGraphQLError(err) : err;
      }
    };
    this.run = graphqlHandler(apollo, context, this.options.operationTimeoutMs);
  }

  get attached(): boolean {
    return this.run !== undefined;
  }

  /** Handles one request to `/graphql` (only called once attached). */
  async handle(request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
    const { operations, events, authenticator, clientAddress } = this.options;
    const operation = operations.start(request.id);
    let execution: Promise<unknown> = Promise.resolve();
    try {
      const principal = authenticator ? await authenticator.authenticate(request.headers.authorization) : undefined;
      const rateKey = principal ? `sub:${principal.subject}` : `ip:${clientAddress(request.raw)}`;
      this.callers.set(request, { operation, principal, rateKey });
      const run = this.run as NonNullable<typeof this.run>;
      const onExecution = (e: Promise<unknown>) => {
        execution = e;
      };
      const { replicas } = this.options;
      if (!replicas) return await run(request, reply, onExecution);
      // Read-your-writes: the request reads where its x-min-lsn allows, and a write answers with the position
      // its commit reached, for the client to send back.
      const routing = await replicas.routingFor(requestedMinLsn(request));
      const minLsnHeader = async (): Promise<Array<[string, string]>> => {
        if (!routing.wrote && operation.type !== 'mutation') return [];
        try {
          return [[MIN_LSN_HEADER, await replicas.primaryLsn()]];
        } catch (err) {
          request.log.warn({ err }, `no ${MIN_LSN_HEADER} header: the primary's WAL position could not be read`);
          return [];
        }
      };
      return await replicas.run(routing, () => run(request, reply, onExecution, minLsnHeader));
    } catch (err) {
      if (!(err instanceof AppError) || err.code !== 'UNAUTHENTICATED') throw err;
      operation.errorCodes.push(err.code);
      return reply
        .code(401)
        .header('www-authenticate', 'Bearer')
        .type('application/json; charset=utf-8')
        .send({ errors: [{ message: err.message, extensions: { code: err.code } }] });
    } finally {
      // The operation leaves the registry when its execution ends, which after an OPERATION_TIMEOUT_MS answer
      // is later than the response.
      void execution
        .catch(() => undefined)
        .finally(() => {
          operations.finish(operation);
          events.emit('operation', {
            requestId: operation.requestId,
            name: operation.name,
            type: operation.type,
            durationMs: Date.now() - operation.startedAt,
            sqlStatements: operation.sqlStatements,
            errorCodes: operation.errorCodes,
            status: reply.statusCode,
          } satisfies OperationReport);
        });
    }
  }
}
