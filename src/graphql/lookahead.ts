/**
 * Look-ahead: which fields the operation asks for below the field being resolved, so a resolver can fetch
 * related data together with its own (one batch up front) instead of leaving every row to ask for it later.
 */
import { Kind, type FieldNode, type GraphQLResolveInfo, type SelectionSetNode } from 'graphql';

/** The fields of a selection set, with fragment spreads and inline fragments flattened (directives ignored). */
function fieldsOf(selectionSet: SelectionSetNode | undefined, fragments: GraphQLResolveInfo['fragments'], out: FieldNode[] = []): FieldNode[] {
  for (const selection of selectionSet?.selections ?? []) {
    if (selection.kind === Kind.FIELD) out.push(selection);
    else if (selection.kind === Kind.INLINE_FRAGMENT) fieldsOf(selection.selectionSet, fragments, out);
    else fieldsOf(fragments[selection.name.value]?.selectionSet, fragments, out);
  }
  return out;
}

/** The fields asked of a connection, and of its items. */
export interface ConnectionSelection {
  /** Directly on the connection (`totalCount`, `edges`, `pageInfo`, ...). */
  fields: Set<string>;
  /** On its items: under `nodes`, and under `edges { node }`. */
  itemFields: Set<string>;
}

/**
 * What the operation asks of the connection being resolved. An over-estimate at worst (a field under
 * `@skip(if: true)` counts), which costs a fetch that was not needed, never a missing answer: resolvers still load
 * whatever was not fetched up front.
 */
export function connectionSelection(info: GraphQLResolveInfo): ConnectionSelection {
  const fields = new Set<string>();
  const itemFields = new Set<string>();
  const { fragments } = info;
  for (const field of fieldsOf({ kind: Kind.SELECTION_SET, selections: info.fieldNodes }, fragments)) {
    for (const child of fieldsOf(field.selectionSet, fragments)) {
      fields.add(child.name.value);
      const items =
        child.name.value === 'nodes'
          ? [child]
          : child.name.value === 'edges'
            ? fieldsOf(child.selectionSet, fragments).filter((f) => f.name.value === 'node')
            : [];
      for (const item of items) for (const f of fieldsOf(item.selectionSet, fragments)) itemFields.add(f.name.value);
    }
  }
  return { fields, itemFields };
}
