import { main } from './run-process.js';

/** `npm start`: API and generation runner in one process, embedded database unless DATABASE_URL is set. */
main('all-in-one');
