import { createGraphQLClient } from '../../src/client/graphql-client.js';
import { askingForKey, storedApiKey } from './api-key.js';

/** The server the page came from: GraphQL over HTTP and, for progress, over WebSocket; asks for an API key when the server needs one. */
export const client = askingForKey(createGraphQLClient({ baseUrl: '', apiKey: storedApiKey }));
export const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/graphql`;
/** graphql-ws connectionParams: the API key, read at each (re)connection. */
export const connectionParams = () => client.connectionParams();
