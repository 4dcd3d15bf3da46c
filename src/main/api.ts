import { main } from './run-process.js';

/** `npm run start:api`: GraphQL only; run as many as you like behind a load balancer (needs REDIS_URL and DATABASE_URL). */
main('api');
