import { createGraphQLClient } from '../../src/client/graphql-client.js';

/** The server the page came from: GraphQL over HTTP and, for progress, over WebSocket. */
export const client = createGraphQLClient({ baseUrl: '' });
export const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/graphql`;
