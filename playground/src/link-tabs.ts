/**
 * Puts a playground link's tab into GraphiQL 4's saved tabs before GraphiQL starts. GraphiQL reads its tabs from
 * storage (`graphiql:tabState`) and falls back to `defaultTabs` (the tour) only when there are none, ignoring an
 * initial query then; with saved tabs, it opens the last one whose query and variables equal the editors' last
 * text (`graphiql:query`, `graphiql:variables`), adding a tab when none does. So the link is written there: its
 * tab beside the saved tabs (or the tour), and as the editors' text, so GraphiQL opens on it whatever an earlier
 * visit left, and opening the same link again finds its tab instead of adding another.
 */
import type { PlaygroundLink } from './link.js';

/** A tab as GraphiQL 4 saves it; it discards a saved state in which a tab lacks any of these. */
export interface SavedTab {
  id: string;
  title: string;
  query: string | null;
  variables: string | null;
  headers: string | null;
  operationName: string | null;
  response: string | null;
}

/** GraphiQL 4's saved tab state. */
export interface SavedTabs {
  tabs: SavedTab[];
  activeTabIndex: number;
}

/** A preloaded tab, as given to GraphiQL's `defaultTabs`. */
export interface DefaultTab {
  query: string;
  variables?: string;
}

/** The part of GraphiQL's storage (`StorageAPI` of @graphiql/toolkit: keys under `graphiql:`) used here. */
export interface TabStorage {
  get(name: string): string | null;
  set(name: string, value: string): unknown;
}

const FIELDS = ['query', 'variables', 'headers', 'operationName', 'response'] as const;

function isSavedTab(value: unknown): value is SavedTab {
  if (typeof value !== 'object' || value === null) return false;
  const tab = value as Record<string, unknown>;
  return typeof tab.id === 'string' && typeof tab.title === 'string' && FIELDS.every((key) => key in tab && (typeof tab[key] === 'string' || tab[key] === null));
}

/** The saved state, when GraphiQL would accept it (the same checks as its own); undefined otherwise. */
function parseSaved(text: string | null): SavedTabs | undefined {
  if (!text) return undefined;
  try {
    const state: unknown = JSON.parse(text);
    if (typeof state !== 'object' || state === null || Array.isArray(state)) return undefined;
    const { tabs, activeTabIndex } = state as Record<string, unknown>;
    return typeof activeTabIndex === 'number' && Array.isArray(tabs) && tabs.every(isSavedTab) ? { tabs, activeTabIndex } : undefined;
  } catch {
    return undefined;
  }
}

/** An id like GraphiQL's own (`crypto.randomUUID` exists only on https or localhost pages). */
function randomId(): string {
  const part = () => Math.floor((1 + Math.random()) * 0x10000).toString(16).slice(1);
  return `${part()}${part()}-${part()}-${part()}-${part()}-${part()}${part()}${part()}`;
}

/** GraphiQL's tab title: the first operation's name, found as loosely as GraphiQL finds it. */
function titleOf(query: string, operationName: string | null): string {
  return operationName ?? /^(?!#).*(query|subscription|mutation)\s+([a-zA-Z0-9_]+)/m.exec(query)?.[2] ?? '<untitled>';
}

function newTab(id: string, query: string, variables: string | null, operationName: string | null): SavedTab {
  return { id, title: titleOf(query, operationName), query, variables, headers: null, operationName, response: null };
}

/**
 * The tabs to open with `link` active: the saved ones (or the tour, when none are saved or GraphiQL would reject
 * them) and the link's, found among them as GraphiQL finds a tab (the last with the same query and variables and
 * no saved headers) or added after them.
 */
export function tabsWithLink(saved: string | null, link: PlaygroundLink, tour: readonly DefaultTab[], newId: () => string = randomId): SavedTabs {
  const tabs = parseSaved(saved)?.tabs ?? tour.map((step) => newTab(newId(), step.query, step.variables ?? null, null));
  const same = (tab: SavedTab) => tab.query === link.query && (tab.variables ?? '') === (link.variables ?? '') && !tab.headers;
  const found = tabs.findLastIndex(same);
  if (found >= 0) return { tabs, activeTabIndex: found };
  return { tabs: [...tabs, newTab(newId(), link.query, link.variables, link.operationName)], activeTabIndex: tabs.length };
}

/** Saves `link` as the active tab in `storage`, where GraphiQL will read it when it starts. */
export function openLink(storage: TabStorage, link: PlaygroundLink, tour: readonly DefaultTab[]): void {
  storage.set('tabState', JSON.stringify(tabsWithLink(storage.get('tabState'), link, tour)));
  // GraphiQL picks its tab by these (and starts the editors with them); '' removes the key, as no variables.
  storage.set('query', link.query);
  storage.set('variables', link.variables ?? '');
}
