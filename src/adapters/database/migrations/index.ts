import { InitialSchema1764240000000 } from './1764240000000-initial-schema.js';

/** In order; listed explicitly so migrations work the same under tsx, tests and a bundle. */
export const MIGRATIONS = [InitialSchema1764240000000];
