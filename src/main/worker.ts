import { main } from './run-process.js';

/** `npm run start:worker`: runs generations from the shared queue, WORKER_CONCURRENCY at a time (needs REDIS_URL and DATABASE_URL). */
main('worker');
