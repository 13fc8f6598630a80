/**
 * The playground page: GraphiQL, bundled at install time (scripts/build-playground.ts) and served by the server
 * itself, so it works on a network with no internet. It opens with the README's tour preloaded as tabs, the
 * headers editor for a bearer token, and the schema docs explorer; a link (`?query=...&variables=...`, see
 * link.ts) opens its operation in a tab beside them. Its requests carry the `x-min-lsn` of the last mutation, so
 * queries see their own writes on a server with read replicas.
 */
import { createGraphiQLFetcher, StorageAPI } from '@graphiql/toolkit';
import { GraphiQL } from 'graphiql';
import { createRoot } from 'react-dom/client';
import 'graphiql/style.css';
import { TOUR } from './tour.js';
import { minLsnFetch } from './min-lsn.js';
import { byCurrentDocument } from './current-document.js';
import { readLink, type PlaygroundLink } from './link.js';
import { openLink } from './link-tabs.js';
import { SelectOperation, useLinkOperation } from './link-operation.js';

const endpoint = new URL('/graphql', window.location.href);
// Subscriptions go over WebSocket (graphql-ws) to the same path; the Headers pane's JSON becomes the
// connection_init payload, so `Authorization` authenticates them too.
const subscriptionUrl = new URL(endpoint);
subscriptionUrl.protocol = endpoint.protocol === 'https:' ? 'wss:' : 'ws:';
const fetcher = byCurrentDocument(
  createGraphiQLFetcher({
    url: endpoint.toString(),
    subscriptionUrl: subscriptionUrl.toString(),
    // Read-your-writes against a server with read replicas (see min-lsn.ts); unbound `fetch` would throw in browsers.
    fetch: minLsnFetch((input, init) => fetch(input, init)),
  }),
);

/** GraphiQL with the tour, and the link's tab when the page was opened from one. */
function Playground({ link }: { link: PlaygroundLink | undefined }) {
  const { operationName, onTabChange } = useLinkOperation(link);
  return (
    <GraphiQL
      fetcher={fetcher}
      defaultTabs={TOUR}
      defaultHeaders={'{\n  "Authorization": "Bearer <token, when the server has authentication on>"\n}'}
      isHeadersEditorEnabled
      shouldPersistHeaders={false}
      operationName={operationName}
      onTabChange={onTabChange}
    >
      {link?.operationName ? <SelectOperation name={link.operationName} /> : null}
    </GraphiQL>
  );
}

const link = readLink(window.location.search);
// Before GraphiQL starts: it reads its tabs from storage once, when it mounts (see link-tabs.ts).
if (link) openLink(new StorageAPI(), link, TOUR);
const root = document.getElementById('graphiql');
if (root) createRoot(root).render(<Playground link={link} />);
