import type { PublicUrls } from '../http/public-urls.js';
import type { Viewer } from '../services/auth/viewer.js';
import type { GenerationService } from '../services/generation/generation-service.js';
import type { SetupService } from '../services/setup/setup-service.js';
import type { StoryLoaders } from './loaders.js';

/** Built fresh for every GraphQL operation, so DataLoader caches never outlive a request. */
export interface RequestContext {
  loaders: StoryLoaders;
  /** Whose stories and sessions this request sees and starts. */
  viewer: Viewer;
  /** For the subscription's `subscribe`, which runs without a resolver instance. */
  generations: GenerationService;
  /** For the setupProgress subscription. */
  setup: SetupService;
  /** Every URL handed to a client goes through this: absolute (PUBLIC_BASE_URL, else this request's host) or relative (PUBLIC_URLS=relative). */
  urls: PublicUrls;
}
