/**
 * Operation limits, checked after validation and before execution, so a refused operation costs no SQL: depth,
 * aliases, directives and an estimated cost (docs/API.md, "Operation limits": each field costs 1; the selection
 * under a connection counts `first`/`last` times, default 50; other lists count once). The token limit is enforced
 * by the parser itself.
 */
import {
  Kind,
  getNamedType,
  isCompositeType,
  valueFromASTUntyped,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLCompositeType,
  type GraphQLField,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from 'graphql';
import { AppError } from '../errors.js';

export interface OperationLimits {
  maxDepth: number;
  maxAliases: number;
  maxDirectives: number;
  maxCost: number;
}

/** What the walk measured. */
export interface OperationShape {
  depth: number;
  aliases: number;
  directives: number;
  cost: number;
}

/** The page size a connection field's selection is multiplied by. */
const DEFAULT_PAGE = 50;

interface Walk {
  schema: GraphQLSchema;
  fragments: Record<string, FragmentDefinitionNode>;
  variables: Record<string, unknown>;
  shape: OperationShape;
}

function pageArgument(field: FieldNode, variables: Record<string, unknown>): number {
  for (const arg of field.arguments ?? []) {
    if (arg.name.value !== 'first' && arg.name.value !== 'last') continue;
    const value = valueFromASTUntyped(arg.value, variables);
    if (typeof value === 'number' && Number.isFinite(value)) return Math.max(0, value);
  }
  return DEFAULT_PAGE;
}

function fieldDefinition(parent: GraphQLCompositeType, name: string): GraphQLField<unknown, unknown> | undefined {
  return 'getFields' in parent ? parent.getFields()[name] : undefined;
}

/** Walks a selection set; returns its cost, counting `multiplier` for each field. */
function walk(w: Walk, parent: GraphQLCompositeType, set: SelectionSetNode, depth: number, multiplier: number, seen: ReadonlySet<string>): number {
  let cost = 0;
  for (const selection of set.selections) {
    w.shape.directives += selection.directives?.length ?? 0;
    if (selection.kind === Kind.FIELD) {
      if (selection.alias) w.shape.aliases++;
      // Introspection (__schema, __type) is answered from memory and switched by its own setting (INTROSPECTION);
      // its standard query nests deeper than MAX_QUERY_DEPTH, which must not lock out tools.
      if (selection.name.value.startsWith('__')) continue;
      w.shape.depth = Math.max(w.shape.depth, depth);
      cost += multiplier;
      if (!selection.selectionSet) continue;
      const def = fieldDefinition(parent, selection.name.value);
      const type = def ? getNamedType(def.type) : undefined;
      if (!type || !isCompositeType(type)) continue;
      const factor = type.name.endsWith('Connection') ? pageArgument(selection, w.variables) : 1;
      cost += walk(w, type, selection.selectionSet, depth + 1, multiplier * factor, seen);
    } else if (selection.kind === Kind.INLINE_FRAGMENT) {
      const type = selection.typeCondition ? w.schema.getType(selection.typeCondition.name.value) : parent;
      if (type && isCompositeType(type)) cost += walk(w, type, selection.selectionSet, depth, multiplier, seen);
    } else {
      const name = selection.name.value;
      const fragment = w.fragments[name];
      if (!fragment || seen.has(name)) continue; // cycles are refused by validation; never loop here
      w.shape.directives += fragment.directives?.length ?? 0;
      const type = w.schema.getType(fragment.typeCondition.name.value);
      if (type && isCompositeType(type)) cost += walk(w, type, fragment.selectionSet, depth, multiplier, new Set([...seen, name]));
    }
  }
  return cost;
}

/** Measures an operation (after validation: fields and fragments exist). */
export function measureOperation(
  schema: GraphQLSchema,
  operation: OperationDefinitionNode,
  fragments: Record<string, FragmentDefinitionNode>,
  variables: Record<string, unknown>,
): OperationShape {
  const root = schema.getRootType(operation.operation);
  const shape: OperationShape = { depth: 0, aliases: 0, directives: operation.directives?.length ?? 0, cost: 0 };
  if (!root) return shape;
  shape.cost = walk({ schema, fragments, variables, shape }, root, operation.selectionSet, 1, 1, new Set());
  return shape;
}

/** Refuses an operation over any limit with QUERY_TOO_COMPLEX (HTTP 400), naming the limit and the setting. */
export function enforceLimits(shape: OperationShape, limits: OperationLimits): void {
  const checks: Array<[keyof OperationShape, number, string, string]> = [
    ['depth', limits.maxDepth, 'MAX_QUERY_DEPTH', 'nested deeper than'],
    ['aliases', limits.maxAliases, 'MAX_ALIASES', 'uses more aliases than'],
    ['directives', limits.maxDirectives, 'MAX_DIRECTIVES', 'uses more directives than'],
    ['cost', limits.maxCost, 'MAX_QUERY_COST', 'is estimated to cost more than'],
  ];
  for (const [measure, limit, setting, words] of checks) {
    if (shape[measure] > limit) {
      throw new AppError(
        'QUERY_TOO_COMPLEX',
        `The operation ${words} ${limit} (${measure} ${shape[measure]}); ask for less, or page through it`,
        { limit, measure, actual: shape[measure], setting },
        { status: 400 },
      );
    }
  }
}
