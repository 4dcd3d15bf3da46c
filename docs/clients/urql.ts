import { cacheExchange, Client, fetchExchange, subscriptionExchange } from '@urql/core';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

/**
 * urql sends queries as GET by default; Apollo Server's CSRF prevention
 * refuses a GET without a preflight header, so send everything as POST.
 */
export function createUrqlClient(url = 'http://localhost:4000/graphql', apiKey?: string) {
  const authorization = apiKey ? { authorization: `Bearer ${apiKey}` } : undefined;
  const ws = createClient({ url: url.replace(/^http/, 'ws'), webSocketImpl: WebSocket, connectionParams: authorization });
  return new Client({
    url,
    preferGetMethod: false,
    fetchOptions: () => ({ headers: authorization ?? {} }),
    exchanges: [
      cacheExchange,
      fetchExchange,
      subscriptionExchange({
        forwardSubscription: (request) => ({
          subscribe: (sink) => ({ unsubscribe: ws.subscribe({ ...request, query: request.query ?? '' }, sink) }),
        }),
      }),
    ],
  });
}
