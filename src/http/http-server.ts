import { ErrorCode } from '../client/error-codes.js';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloServer } from '@apollo/server';
import { expressMiddleware } from '@as-integrations/express5';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { ApolloServerPluginLandingPageLocalDefault, ApolloServerPluginLandingPageProductionDefault } from '@apollo/server/plugin/landingPage/default';
import express from 'express';
import { GraphQLError, specifiedRules, validate, type GraphQLSchema } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import helmet from 'helmet';
import { WebSocketServer } from 'ws';
import type { Logger } from '../logger.js';
import type { RequestContext } from '../resolvers/context.js';
import type { MediaUrlSigner } from '../services/auth/media-url-signer.js';
import type { Viewer } from '../services/auth/viewer.js';
import { jsonErrors, notFound } from './http-errors.js';
import { operationsRoutes, type OperationsOptions } from './operations.js';
import { queryLimitsRule } from './query-limits.js';
import { checkUpgrade, refuseUpgrade, type AllowedOrigins } from './websocket-gate.js';
import { MEDIA_KEY_PATTERN } from '../adapters/media/local-media-store.js';
import { connectionClientKey, requestRateLimit, SubscriptionCounter } from './client-limits.js';
import { WebSocketCloseCode } from './close-codes.js';
import { publicUrlsFor, type PublicUrls } from './public-urls.js';
import type { TrustProxy } from '../config.js';
import { exportRoute } from './export-route.js';
import type { BookExportService } from '../services/export/book-export-service.js';
import type { ExportLinks } from '../services/export/export-links.js';

export interface HttpServerOptions {
  schema: GraphQLSchema;
  /** `urls`: the request's URL builder (absolute from PUBLIC_BASE_URL or the request's host, or relative). */
  createContext: (viewer: Viewer, urls: PublicUrls) => RequestContext;
  /**
   * Who is asking, from an `Authorization` value (HTTP header, or the WebSocket's
   * connectionParams.authorization); null refuses the request as UNAUTHENTICATED.
   */
  authenticate: (authorization: string | undefined) => Promise<Viewer | null>;
  /** Set: /media answers only signed, unexpired URLs (AUTH_MODE=api-key). */
  mediaSigner: MediaUrlSigner | null;
  /** Book downloads under /export (Story.exportUrl). */
  exports: { service: BookExportService; links: ExportLinks };
  maxSubscriptionsPerConnection: number;
  /** Open subscriptions per client (API key, or address) over all its connections. */
  maxSubscriptionsPerClient: number;
  /** GraphQL requests over HTTP per client and minute. */
  requestsPerMinute: number;
  /** /readyz and /metrics. */
  operations: Omit<OperationsOptions, 'openWebSockets' | 'logger'>;
  mediaDir: string;
  /** The built web page (`npm run build`), served at `/` when the folder exists. */
  webDir: string | null;
  landingPage: boolean;
  /** Schema introspection and "Did you mean …" suggestions in error messages. */
  introspection: boolean;
  /** Origins besides the server's own whose pages may open the WebSocket. */
  allowedOrigins: AllowedOrigins;
  /** PUBLIC_BASE_URL, whose origin counts as the server's own and which starts every URL handed out. */
  publicBaseUrl: string | undefined;
  /** PUBLIC_URLS: absolute URLs (the default) or server-relative paths. */
  publicUrls: 'absolute' | 'relative';
  /** TRUST_PROXY: Express's `trust proxy`, also applied to WebSocket upgrade requests. */
  trustProxy: TrustProxy;
  /** Answers /healthz; throws when a dependency the server needs is down. */
  checkHealth: () => Promise<void>;
  logger: Logger;
}

export interface RunningHttpServer {
  url: string;
  port: number;
  /** The web page's address (`<url>/`); null when WEB_DIR is off or has no built page. */
  pageUrl: string | null;
  /** Closes WebSockets with 1001 (going away) and stops accepting requests. */
  close(): Promise<void>;
}

const BODY_LIMIT = '100kb';

/** What Apollo's hideSchemaDetailsFromClientErrors strips, for the WebSocket side. */
function withoutSuggestions(message: string): string {
  return message.replace(/ ?Did you mean(.+?)\?$/, '');
}

/**
 * helmet's headers; the CSP allows what the built page loads (its own scripts, styles,
 * images, data: icons, GraphQL over fetch and WebSocket to this host) and nothing else.
 * Apollo's landing page (development) loads Sandbox from Apollo's CDN, so /graphql
 * goes without a CSP while it is on.
 */
function securityHeaders(landingPage: boolean): express.RequestHandler {
  const strict = helmet({
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        connectSrc: ["'self'", (req) => `ws://${req.headers.host}`, (req) => `wss://${req.headers.host}`],
        frameAncestors: ["'none'"],
        formAction: ["'self'"],
        objectSrc: ["'none'"],
        upgradeInsecureRequests: null,
      },
    },
  });
  const forLandingPage = helmet({ contentSecurityPolicy: false, crossOriginEmbedderPolicy: false });
  return (req, res, next) => (landingPage && req.path === '/graphql' ? forLandingPage : strict)(req, res, next);
}

/** GraphQL over HTTP and WebSocket at /graphql, health at /healthz, images under /media. */
export async function startHttpServer(options: HttpServerOptions, listen: { host: string; port: number }): Promise<RunningHttpServer> {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', options.trustProxy);
  const urlSettings = {
    publicBaseUrl: options.publicBaseUrl,
    mode: options.publicUrls,
    trusts: app.get('trust proxy fn') as (address: string, hop: number) => boolean,
  };
  const httpServer = http.createServer(app);

  // Same bound as HTTP bodies: no GraphQL message of ours comes near it.
  const wsServer = new WebSocketServer({ noServer: true, maxPayload: 100 * 1024 });
  const publicOrigin = options.publicBaseUrl ? new URL(options.publicBaseUrl).origin : null;
  // Refused before the handshake, with a status and a reason, not a bare 1006.
  httpServer.on('upgrade', (request, socket, head) => {
    const refusal = checkUpgrade(request, { path: '/graphql', allowedOrigins: options.allowedOrigins, publicOrigin });
    if (refusal) return refuseUpgrade(socket, refusal, request, options.logger);
    wsServer.handleUpgrade(request, socket, head, (ws) => wsServer.emit('connection', ws, request));
  });
  const socketViewers = new WeakMap<object, Viewer>();
  const subscriptionsByClient = new SubscriptionCounter<{ subscriptions: Record<string, unknown> }>();
  const socketClients = new WeakMap<object, string>();
  const wsCleanup = useServer(
    {
      schema: options.schema,
      validate: (schema, document) =>
        // Same shape as over HTTP: a code clients can read, and no schema hints when introspection is off.
        validate(schema, document, [...specifiedRules, queryLimitsRule()]).map(
          (error) =>
            new GraphQLError(options.introspection ? error.message : withoutSuggestions(error.message), {
              nodes: error.nodes,
              extensions: { ...error.extensions, code: 'GRAPHQL_VALIDATION_FAILED' },
            }),
        ),
      // A missing or unknown key closes the socket with 4403 (graphql-ws's Forbidden).
      onConnect: async (ctx) => {
        const authorization = ctx.connectionParams?.authorization;
        const viewer = await options.authenticate(typeof authorization === 'string' ? authorization : undefined);
        if (!viewer) return false;
        socketViewers.set(ctx.extra.socket, viewer);
        const client = connectionClientKey(ctx.connectionParams, ctx.extra.request);
        socketClients.set(ctx.extra.socket, client);
        subscriptionsByClient.add(client, ctx);
        return true;
      },
      onClose: (ctx) => {
        const client = socketClients.get(ctx.extra.socket);
        if (client) subscriptionsByClient.remove(client, ctx);
      },
      onSubscribe: (ctx) => {
        const refuse = (message: string) => [new GraphQLError(message, { extensions: { code: ErrorCode.RATE_LIMITED } })];
        // graphql-ws has already reserved this subscription's id in ctx.subscriptions: counts include it.
        if (Object.keys(ctx.subscriptions).length > options.maxSubscriptionsPerConnection) {
          return refuse(`This connection already has ${options.maxSubscriptionsPerConnection} subscriptions open, the limit; end one first.`);
        }
        const client = socketClients.get(ctx.extra.socket);
        if (client && subscriptionsByClient.open(client) > options.maxSubscriptionsPerClient) {
          return refuse(
            `This API key (or address) already has ${options.maxSubscriptionsPerClient} subscriptions open over all its connections, the limit (MAX_SUBSCRIPTIONS_PER_CLIENT); end one first.`,
          );
        }
        return undefined;
      },
      context: (ctx) => {
        const viewer = socketViewers.get(ctx.extra.socket);
        // onConnect records every accepted socket's viewer before any operation runs.
        if (!viewer) throw new Error('WebSocket operation before its connection was authenticated');
        // URLs in subscription events are built from the WebSocket's upgrade request, as over HTTP.
        return options.createContext(viewer, publicUrlsFor(ctx.extra.request, urlSettings)) as unknown as Record<string, unknown>;
      },
      onError: (_ctx, _id, _payload, errors) => {
        options.logger.debug({ errors: errors.map((error) => error.message) }, 'subscription error');
      },
    },
    wsServer,
  );

  const apollo = new ApolloServer<RequestContext>({
    schema: options.schema,
    introspection: options.introspection,
    hideSchemaDetailsFromClientErrors: !options.introspection,
    // run-process.ts owns SIGTERM/SIGINT: Apollo's own handler re-sent the signal, which read as a second one (exit 1).
    stopOnTerminationSignals: false,
    validationRules: [queryLimitsRule()],
    plugins: [
      ApolloServerPluginDrainHttpServer({ httpServer }),
      {
        async serverWillStart() {
          return {
            async drainServer() {
              await wsCleanup.dispose();
            },
          };
        },
      },
      options.landingPage ? ApolloServerPluginLandingPageLocalDefault({ embed: true }) : ApolloServerPluginLandingPageProductionDefault({ footer: false }),
    ],
  });
  await apollo.start();

  const operations = operationsRoutes({ ...options.operations, openWebSockets: () => wsServer.clients.size, logger: options.logger });
  app.use(operations.timeRequests);
  app.use(securityHeaders(options.landingPage));
  app.use(operations.router);

  app.get('/healthz', async (_req, res) => {
    try {
      await options.checkHealth();
      res.json({ status: 'ok' });
    } catch (error) {
      // The reason is for operators (it may name hosts and users), not for whoever asks.
      options.logger.error({ err: error }, 'health check failed');
      res.status(503).json({ status: 'unavailable' });
    }
  });

  // Only finished images with generated names: no half-written file, nothing else that may share the folder.
  app.use(
    '/media',
    (req, res, next) => {
      const key = req.path.slice(1);
      if (!MEDIA_KEY_PATTERN.test(key)) return notFound(req, res, next);
      if (options.mediaSigner && !options.mediaSigner.verify(key, req.query)) {
        return res.status(403).json({
          errors: [
            { message: "This picture's link has expired or is not valid; load the story again for a fresh one.", extensions: { code: ErrorCode.FORBIDDEN } },
          ],
        });
      }
      next();
    },
    express.static(options.mediaDir, { dotfiles: 'deny', index: false, redirect: false, fallthrough: false, immutable: true, maxAge: '365d' }),
  );

  // Downloads count against a rate limit of their own, cached ones too: a download not in the export cache renders
  // the book, and a cached one still reads the book's rows and sends the whole file (README, Security, Limits).
  app.get(
    '/export/:file',
    requestRateLimit(options.requestsPerMinute),
    exportRoute({ exports: options.exports.service, links: options.exports.links, logger: options.logger }),
  );

  const servesPage = options.webDir !== null && fs.existsSync(options.webDir);
  if (options.webDir && servesPage) {
    app.use(express.static(options.webDir, { index: 'index.html', dotfiles: 'ignore', maxAge: '1h' }));
  }

  app.use(
    '/graphql',
    requestRateLimit(options.requestsPerMinute),
    express.json({ limit: BODY_LIMIT }),
    expressMiddleware(apollo, {
      context: async ({ req }) => {
        const viewer = await options.authenticate(req.headers.authorization);
        if (!viewer) {
          throw new GraphQLError('Send an API key: Authorization: Bearer <key> (create one with `npm run api-key -- create <owner>`).', {
            extensions: { code: ErrorCode.UNAUTHENTICATED, http: { status: 401 } },
          });
        }
        return options.createContext(viewer, publicUrlsFor(req, urlSettings));
      },
    }),
  );
  app.use(notFound);
  app.use(jsonErrors(options.logger, { bodyLimit: BODY_LIMIT }));

  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(listen.port, listen.host, () => resolve());
  });
  const { port } = httpServer.address() as AddressInfo;
  const host = listen.host === '0.0.0.0' || listen.host === '::' ? 'localhost' : listen.host;

  const url = `http://${host}:${port}`;
  return {
    url,
    port,
    pageUrl: servesPage ? `${url}/` : null,
    async close() {
      for (const client of wsServer.clients) client.close(WebSocketCloseCode.GoingAway, 'Server shutting down');
      await apollo.stop();
    },
  };
}
