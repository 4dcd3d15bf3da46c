import { createClient } from 'graphql-ws';
import { type SetupComponent, SetupProgressDocument, type SetupProgressFieldsFragment, type SetupProgressSubscription } from './generated/graphql.js';
import { queryText } from './graphql-client.js';

/**
 * What the set-up panel and `story-agent setup` share: following one component's
 * download over graphql-ws, and saying bytes, speeds and durations in words.
 */
export type SetupProgress = SetupProgressFieldsFragment;

export interface FollowSetupOptions {
  /** ws:// or wss:// URL of /graphql. */
  url: string;
  component: SetupComponent;
  /** Node has no global WebSocket: the CLI passes `ws`. */
  webSocketImpl?: unknown;
  connectionParams?: () => Record<string, unknown>;
  onProgress(progress: SetupProgress): void;
  signal?: AbortSignal;
}

/** Follows a download to its end; resolves with the last event (COMPLETED, FAILED, or IDLE when none was running). Rejects when the stream breaks. */
export function followSetupProgress(options: FollowSetupOptions): Promise<SetupProgress> {
  const client = createClient({
    url: options.url,
    webSocketImpl: options.webSocketImpl,
    connectionParams: options.connectionParams,
    lazy: true,
    retryAttempts: 3,
  });
  return new Promise<SetupProgress>((resolve, reject) => {
    let last: SetupProgress | null = null;
    const stop = () => {
      unsubscribe();
      void client.dispose();
    };
    const onAbort = () => {
      stop();
      reject(options.signal?.reason);
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const unsubscribe = client.subscribe<SetupProgressSubscription>(
      { query: queryText(SetupProgressDocument), variables: { component: options.component } },
      {
        next: (result) => {
          if (result.errors?.length) return void reject(new Error(result.errors.map((error) => error.message).join('; ')));
          if (!result.data) return;
          last = result.data.setupProgress;
          options.onProgress(last);
        },
        error: (error) => {
          options.signal?.removeEventListener('abort', onAbort);
          void client.dispose();
          reject(error instanceof Error ? error : new Error(`the progress stream of the ${options.component} download broke`));
        },
        complete: () => {
          options.signal?.removeEventListener('abort', onAbort);
          void client.dispose();
          if (last) resolve(last);
          else reject(new Error(`the progress stream of the ${options.component} download ended without an event`));
        },
      },
    );
  });
}

/** Decimal units as download sizes are usually given: "1.1 GB", "640 kB", "512 B". */
export function formatBytes(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(unit === 0 || value >= 100 ? 0 : 1)} ${units[unit]}`;
}

/** "45 s", "3 min 20 s", "1 h 05 min". */
function formatDuration(seconds: number): string {
  const total = Math.max(0, Math.round(seconds));
  if (total < 60) return `${total} s`;
  if (total < 3600) return `${Math.floor(total / 60)} min ${String(total % 60).padStart(2, '0')} s`;
  return `${Math.floor(total / 3600)} h ${String(Math.floor((total % 3600) / 60)).padStart(2, '0')} min`;
}

/** "120 MB of 1.1 GB · 25 MB/s · 40 s left", leaving out what is not known yet. */
export function describeTransfer(progress: Pick<SetupProgress, 'bytesDone' | 'bytesTotal' | 'bytesPerSecond' | 'secondsLeft'>): string {
  const parts = [progress.bytesTotal !== null ? `${formatBytes(progress.bytesDone)} of ${formatBytes(progress.bytesTotal)}` : formatBytes(progress.bytesDone)];
  if (progress.bytesPerSecond !== null) parts.push(`${formatBytes(progress.bytesPerSecond)}/s`);
  if (progress.secondsLeft !== null && progress.bytesDone !== progress.bytesTotal) parts.push(`${formatDuration(progress.secondsLeft)} left`);
  return parts.join(' · ');
}

/** Whole percent done, or null while the total is unknown. */
export function percentDone(progress: Pick<SetupProgress, 'bytesDone' | 'bytesTotal'>): number | null {
  if (progress.bytesTotal === null || progress.bytesTotal <= 0) return null;
  return Math.min(100, Math.floor((progress.bytesDone / progress.bytesTotal) * 100));
}
