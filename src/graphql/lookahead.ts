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

/**
 * The names of the fields selected on the items of the connection being resolved: under `nodes`, and under
 * `edges { node }`. An over-estimate at worst (a field under `@skip(if: true)` counts), which costs a fetch that
 * was not needed, never a missing answer: resolvers still load whatever was not fetched up front.
 */
export function connectionItemFields(info: GraphQLResolveInfo): Set<string> {
  const names = new Set<string>();
  const { fragments } = info;
  for (const field of fieldsOf({ kind: Kind.SELECTION_SET, selections: info.fieldNodes }, fragments)) {
    for (const child of fieldsOf(field.selectionSet, fragments)) {
      const items =
        child.name.value === 'nodes'
          ? [child]
          : child.name.value === 'edges'
            ? fieldsOf(child.selectionSet, fragments).filter((f) => f.name.value === 'node')
            : [];
      for (const item of items) for (const f of fieldsOf(item.selectionSet, fragments)) names.add(f.name.value);
    }
  }
  return names;
}
