/**
 * How operations execute: each parsed document is compiled once by graphql-jit into a function specialised to its
 * selection, and every later request for the same document runs that function instead of graphql-js walking the
 * document field by field. A page of 50 tasks resolves about 700 fields; graphql-js spends most of its execution
 * time on per-field bookkeeping (argument objects, paths, promise checks) that the compiled function does not do.
 *
 * Apollo Server 5 has no executor option; its documented way to swap execution is the gateway interface
 * (`load` returns the schema and an executor), which is all this module uses of it. Parsing, validation, the
 * document cache and every plugin hook still run in Apollo's pipeline as before.
 */
import {
  execute,
  getNamedType,
  GraphQLError,
  isInputObjectType,
  Kind,
  printSchema,
  typeFromAST,
  type DocumentNode,
  type GraphQLInputObjectType,
  type GraphQLSchema,
  type OperationDefinitionNode,
} from 'graphql';
import { compileQuery, isCompiledQuery, type CompiledQuery } from 'graphql-jit';
import type { GatewayExecutor, GatewayInterface } from '@apollo/server-gateway-interface';
import type { GraphQLContext } from './context.js';

/** An operation's compiled form, or `null` when graphql-jit could not compile it (graphql-js runs it instead). */
type Compiled = CompiledQuery | null;

/**
 * Builds the executor of a schema. Compiled operations are cached per parsed document (a WeakMap, so they go when
 * Apollo's document cache lets the document go) and per operation name.
 *
 * Some cases run on graphql-js, so clients see exactly its behaviour:
 * - a document graphql-jit cannot compile (compiled once, remembered as such);
 * - an operation with a variable of a recursive input type (`TaskFilter` nests itself in `and`, `or`, `not`):
 *   graphql-jit generates the variable's coercion code by unfolding the type, which never ends for a recursive one
 *   (graphql-jit issue #81, open), so such operations are not given to it at all;
 * - a request whose variables do not coerce (no `data` in the compiled result): graphql-js words those errors, and
 *   Apollo recognises its wording to answer BAD_USER_INPUT with HTTP 400.
 */
export function createCompiledExecutor(schema: GraphQLSchema): GatewayExecutor {
  const compiledByDocument = new WeakMap<DocumentNode, Map<string, Compiled>>();
  const recursive = recursiveInputTypes(schema);

  const compiledFor = (document: DocumentNode, operationName: string | undefined): Compiled => {
    let byName = compiledByDocument.get(document);
    if (!byName) compiledByDocument.set(document, (byName = new Map<string, Compiled>()));
    const key = operationName ?? '';
    let compiled = byName.get(key);
    if (compiled === undefined) {
      compiled = null;
      if (!takesRecursiveInput(schema, operationOf(document, operationName), recursive)) {
        const result = compileQuery(schema, document, operationName);
        if (isCompiledQuery(result)) compiled = result;
      }
      byName.set(key, compiled);
    }
    return compiled;
  };

  return async (requestContext) => {
    const { document, request } = requestContext;
    const contextValue = requestContext.context as GraphQLContext;
    const variables = request.variables ?? {};
    const operationName = request.operationName ?? undefined;
    const compiled = compiledFor(document, operationName);
    if (compiled) {
      const result = await compiled.query(undefined, contextValue, variables);
      if (result.data !== undefined) return result.errors ? { ...result, errors: result.errors.map(asGraphQLError) } : result;
    }
    return execute({ schema, document, contextValue, variableValues: variables, operationName });
  };
}

/** The operation a request runs (Apollo has already checked that it exists). */
function operationOf(document: DocumentNode, operationName: string | undefined): OperationDefinitionNode | undefined {
  return document.definitions.find(
    (d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION && (operationName === undefined || d.name?.value === operationName),
  );
}

/** The input object types that contain themselves, directly or through other input types. */
export function recursiveInputTypes(schema: GraphQLSchema): Set<string> {
  const fieldTypes = (type: GraphQLInputObjectType) =>
    Object.values(type.getFields())
      .map((f) => getNamedType(f.type))
      .filter(isInputObjectType);
  const reaches = (from: GraphQLInputObjectType, target: string, seen: Set<string>): boolean =>
    fieldTypes(from).some((t) => t.name === target || (!seen.has(t.name) && (seen.add(t.name), reaches(t, target, seen))));
  const recursive = new Set<string>();
  for (const type of Object.values(schema.getTypeMap())) {
    if (isInputObjectType(type) && reaches(type, type.name, new Set())) recursive.add(type.name);
  }
  return recursive;
}

/** Does the operation declare a variable whose type is, or contains, a recursive input type? */
function takesRecursiveInput(schema: GraphQLSchema, operation: OperationDefinitionNode | undefined, recursive: Set<string>): boolean {
  if (recursive.size === 0) return false;
  const contains = (name: string, seen: Set<string>): boolean => {
    if (recursive.has(name)) return true;
    const type = schema.getType(name);
    if (!isInputObjectType(type) || seen.has(name)) return false;
    seen.add(name);
    return Object.values(type.getFields()).some((f) => contains(getNamedType(f.type).name, seen));
  };
  return (operation?.variableDefinitions ?? []).some((v) => {
    const type = typeFromAST(schema, v.type);
    return type !== undefined && contains(getNamedType(type).name, new Set());
  });
}

/**
 * graphql-jit's errors look like graphql-js's but are built differently: no `extensions` object unless the original
 * error had one (Apollo and the error masking read `extensions.code` on every error), and `locations` given rather
 * than derived. Rebuilt as graphql-js errors, they carry the same message, path, locations and original error.
 */
function asGraphQLError(error: GraphQLError): GraphQLError {
  const rebuilt = new GraphQLError(error.message, { path: error.path, originalError: error.originalError ?? undefined, extensions: error.extensions });
  // GraphQLError derives locations from AST nodes, which graphql-jit does not keep; its computed ones are the same.
  if (error.locations) Object.defineProperty(rebuilt, 'locations', { value: error.locations, enumerable: true });
  return rebuilt;
}

/**
 * The gateway Apollo is given: it serves one fixed schema (no updates, nothing to poll) with the compiled executor.
 */
export function compiledExecution(schema: GraphQLSchema): GatewayInterface {
  return {
    async load() {
      return { executor: createCompiledExecutor(schema) };
    },
    onSchemaLoadOrUpdate(callback) {
      callback({ apiSchema: schema, coreSupergraphSdl: printSchema(schema) });
      return () => {};
    },
    async stop() {},
  };
}
