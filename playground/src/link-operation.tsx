/**
 * The operation a link names (`operationName`), for a document with several. GraphiQL 4 keeps two choices: the
 * query editor's selected operation (the tab's title, and what Ctrl-Enter runs), which starts as the first one,
 * and the `operationName` prop, which the run button runs instead of asking which one, in every tab.
 */
import { useEditorContext } from '@graphiql/react';
import { useCallback, useEffect, useRef, useState } from 'react';
import type { PlaygroundLink } from './link.js';

/** GraphiQL's tab state, as `onTabChange` reports it (the fields read here). */
interface TabsState {
  tabs: ReadonlyArray<{ query: string | null }>;
  activeTabIndex: number;
}

/**
 * GraphiQL's `operationName` and `onTabChange` props for `link`: its operation name while the active tab holds
 * the link's document as opened; none in other tabs, or once the document is edited (GraphiQL then asks, as usual).
 */
export function useLinkOperation(link: PlaygroundLink | undefined): { operationName?: string; onTabChange?: (state: TabsState) => void } {
  const [onLinkTab, setOnLinkTab] = useState(true);
  const query = link?.query;
  const onTabChange = useCallback((state: TabsState) => setOnLinkTab(state.tabs[state.activeTabIndex]?.query === query), [query]);
  if (!link?.operationName) return {};
  return { operationName: onLinkTab ? link.operationName : undefined, onTabChange };
}

/**
 * Selects `name` in the query editor once it is up (a child of `<GraphiQL>`, which renders unknown children inside
 * its context), so that the tab's title and Ctrl-Enter agree with the link. Once only: GraphiQL replaces the editor
 * when the theme changes, and by then the active tab may be another.
 */
export function SelectOperation({ name }: { name: string }): null {
  const editor = useEditorContext({ nonNull: true });
  const done = useRef(false);
  useEffect(() => {
    if (!editor.queryEditor || done.current) return;
    done.current = true;
    editor.setOperationName(name);
  }, [editor, name]);
  return null;
}
