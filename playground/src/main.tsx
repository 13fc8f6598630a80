/**
 * The playground page: GraphiQL, bundled at install time (scripts/build-playground.ts) and served by the server
 * itself, so it works on a network with no internet. It opens with the README's tour preloaded as tabs, the
 * headers editor for a bearer token, and the schema docs explorer. Its requests carry the `x-min-lsn` of the last
 * mutation, so queries see their own writes on a server with read replicas.
 */
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import { GraphiQL } from 'graphiql';
import { createRoot } from 'react-dom/client';
import 'graphiql/style.css';
import { TOUR } from './tour.js';
import { minLsnFetch } from './min-lsn.js';
import { byCurrentDocument } from './current-document.js';

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
const root = document.getElementById('graphiql');
if (root) {
  createRoot(root).render(
    <GraphiQL
      fetcher={fetcher}
      defaultTabs={TOUR}
      defaultHeaders={'{\n  "Authorization": "Bearer <token, when the server has authentication on>"\n}'}
      isHeadersEditorEnabled
      shouldPersistHeaders={false}
    />,
  );
}
