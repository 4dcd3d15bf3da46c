import { InitialSchema1764240000000 } from './1764240000000-initial-schema.js';
import { OwnersAndApiKeys1764300000000 } from './1764300000000-owners-and-api-keys.js';
import { Books1764800000000 } from './1764800000000-books.js';
import { StageAndWarningCodes1764900000000 } from './1764900000000-stage-and-warning-codes.js';
import { PageEditing1765000000000 } from './1765000000000-page-editing.js';
import { MediaKeyIndex1765100000000 } from './1765100000000-media-key-index.js';

/** In order; listed explicitly so migrations work the same under tsx, tests and a bundle. */
export const MIGRATIONS = [
  InitialSchema1764240000000,
  OwnersAndApiKeys1764300000000,
  Books1764800000000,
  StageAndWarningCodes1764900000000,
  PageEditing1765000000000,
  MediaKeyIndex1765100000000,
];
