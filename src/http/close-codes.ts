/**
 * WebSocket close codes the server sends besides graphql-ws's own protocol codes (`CloseCode`
 * from graphql-ws). RFC 6455 §7.4.1.
 */
export const WebSocketCloseCode = {
  /** The server is going away (shutting down); clients may reconnect to another instance. */
  GoingAway: 1001,
} as const;
