/**
 * Playground links without a browser: reading and writing the link, the saved tabs GraphiQL will start from, and
 * the operation name the fetcher sends. links.test.ts runs the same in Chromium.
 */
import type { Fetcher } from '@graphiql/toolkit';
import { describe, expect, it } from 'vitest';
import { byCurrentDocument } from '../../playground/src/current-document.js';
import { playgroundLink, readLink, type PlaygroundLink } from '../../playground/src/link.js';
import { openLink, tabsWithLink, type SavedTabs } from '../../playground/src/link-tabs.js';
import { TOUR } from '../../playground/src/tour.js';

const LINK: PlaygroundLink = { query: 'query ReadTask($id: ID!) { task(id: $id) { title } }', variables: '{ "id": "1" }', operationName: 'ReadTask' };

/** Ids in order, so that states compare. */
function ids(): () => string {
  let n = 0;
  return () => `id-${++n}`;
}

describe('readLink and playgroundLink', () => {
  it('round-trip any text, and encode it so that Markdown keeps the link whole', () => {
    const link = { query: "query Q($a: String = \"(x) & y = 'z'!*\") {\n  # ü + %20 #\n  __typename\n}", variables: '{ "a": "1 + 1 ) (" }', operationName: 'Q' };
    const url = playgroundLink('http://localhost:4000/playground', link);
    expect(url).toMatch(/^http:\/\/localhost:4000\/playground\?query=[\w.~%-]+&variables=[\w.~%-]+&operationName=Q$/);
    expect(readLink(new URL(url).search)).toEqual(link);
    // GraphiQL's own links encode spaces as '+': those read the same.
    expect(readLink('?query=%7B+__typename+%7D&variables=%7B%7D')).toEqual({ query: '{ __typename }', variables: '{}', operationName: null });
  });

  it('find no link without a query, and keep variables that are not JSON as given', () => {
    expect(readLink('')).toBeUndefined();
    expect(readLink('?variables=%7B%7D&operationName=X')).toBeUndefined();
    expect(readLink('?query=%20%20')).toBeUndefined();
    expect(readLink('?query=%7Ba%7D&variables=%7B%20oops')).toEqual({ query: '{a}', variables: '{ oops', operationName: null });
    expect(readLink('?query=%7Ba%7D&variables=&operationName=')).toEqual({ query: '{a}', variables: null, operationName: null });
  });
});

describe('tabsWithLink', () => {
  it('with nothing saved: the tour, then the link, active', () => {
    const state = tabsWithLink(null, LINK, TOUR, ids());
    expect(state.tabs.map((t) => t.query)).toEqual([...TOUR.map((t) => t.query), LINK.query]);
    expect(state.tabs.map((t) => t.variables)).toEqual([...TOUR.map((t) => t.variables ?? null), LINK.variables]);
    expect(state.activeTabIndex).toBe(TOUR.length);
    expect(state.tabs[TOUR.length]).toMatchObject({ title: 'ReadTask', operationName: 'ReadTask', headers: null, response: null });
  });

  it('opening the same link again finds its tab instead of adding one', () => {
    const once = tabsWithLink(null, LINK, TOUR, ids());
    const twice = tabsWithLink(JSON.stringify({ ...once, activeTabIndex: 0 }), LINK, TOUR, ids());
    expect(twice.tabs).toEqual(once.tabs);
    expect(twice.activeTabIndex).toBe(TOUR.length);
    // Other variables are another tab.
    const other = tabsWithLink(JSON.stringify(once), { ...LINK, variables: '{ "id": "2" }' }, TOUR, ids());
    expect(other.tabs).toHaveLength(TOUR.length + 2);
    expect(other.activeTabIndex).toBe(TOUR.length + 1);
  });

  it('keeps a saved state (the tour closed, another tab active) and adds the link to it', () => {
    const saved: SavedTabs = { tabs: [{ id: 'a', title: '<untitled>', query: '{ a }', variables: null, headers: null, operationName: null, response: null }], activeTabIndex: 0 };
    const state = tabsWithLink(JSON.stringify(saved), LINK, TOUR, ids());
    expect(state.tabs.map((t) => t.id)).toEqual(['a', 'id-1']);
    expect(state.activeTabIndex).toBe(1);
  });

  it('starts from the tour when the saved state is one GraphiQL would reject', () => {
    for (const saved of ['not json', '[]', '{"tabs":[{"id":1}],"activeTabIndex":0}', '{"tabs":[]}']) {
      const state = tabsWithLink(saved, LINK, TOUR, ids());
      expect(state.tabs, saved).toHaveLength(TOUR.length + 1);
      expect(state.activeTabIndex, saved).toBe(TOUR.length);
    }
  });

  it('a link with a tour step as it is opens that step', () => {
    const step = TOUR[4]!;
    const state = tabsWithLink(null, { query: step.query, variables: null, operationName: null }, TOUR, ids());
    expect(state.tabs).toHaveLength(TOUR.length);
    expect(state.activeTabIndex).toBe(4);
  });
});

describe('openLink', () => {
  it("writes the tabs and the editors' text where GraphiQL reads them, over whatever an earlier visit left", () => {
    // StorageAPI's semantics: setting '' removes the key.
    const store = new Map<string, string>([['tabState', 'stale'], ['query', '{ old }'], ['variables', '{ "old": 1 }']]);
    const storage = { get: (name: string) => store.get(name) ?? null, set: (name: string, value: string) => (value ? store.set(name, value) : store.delete(name)) };
    openLink(storage, { ...LINK, variables: null }, TOUR);
    expect(store.get('query')).toBe(LINK.query);
    expect(store.has('variables')).toBe(false);
    const state = JSON.parse(store.get('tabState')!) as SavedTabs;
    expect(state.tabs[state.activeTabIndex]).toMatchObject({ query: LINK.query, variables: null });
  });
});

describe('byCurrentDocument', () => {
  /** The operation name the wrapped fetcher passes on for `query` when GraphiQL chose `chosen`. */
  async function sent(query: string, chosen: string | null): Promise<string | null | undefined> {
    let name: string | null | undefined;
    const inner: Fetcher = async (params) => {
      name = params.operationName;
      return { data: null };
    };
    await byCurrentDocument(inner)({ query, operationName: chosen }, {});
    return name;
  }

  it("sends a one-operation document's own name, not one GraphiQL kept from another tab", async () => {
    expect(await sent('query Stats { taskStatistics { total } }', 'CreateTask')).toBe('Stats');
    expect(await sent('{ taskStatistics { total } }', 'CreateTask')).toBeUndefined();
    expect(await sent('query A { a } query B { b }', 'B')).toBe('B');
    expect(await sent('query A { a ', 'Z')).toBe('Z'); // not parsed: as chosen, and the server answers the error
  });
});
