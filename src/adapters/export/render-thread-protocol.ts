import { isArrayBuffer } from 'node:util/types';
import * as workerThreads from 'node:worker_threads';
import type { BookRenderJob } from '../../ports/book-renderer.js';

/** Messages between WorkerThreadBookRenderer (main thread) and book-render-thread.ts. */

/** A job; its pictures' PNG bytes arrive as Uint8Arrays (transferred where they own their memory). */
export interface RenderRequest {
  id: number;
  job: BookRenderJob;
}

export type RenderReply =
  | {
      type: 'done';
      id: number;
      bytes: Uint8Array;
      missingCharacters: string[];
      /** The rendering thread's id (node:worker_threads threadId). */
      threadId: number;
      /** Wall time of the render in the thread, milliseconds. */
      renderMs: number;
    }
  | { type: 'failed'; id: number; message: string };

/** Node ≥ 21 names the ArrayBuffers it refuses to transfer (and then throws where Node 20 copied them). */
const isMarkedAsUntransferable: (value: object) => boolean =
  'isMarkedAsUntransferable' in workerThreads ? (workerThreads.isMarkedAsUntransferable as (value: object) => boolean) : () => false;

/**
 * The ArrayBuffers of `views` that can be transferred: those a view covers whole and Node
 * lets go of. A small Buffer shares Node's 8 KiB allocation pool with others (transferring
 * it would take their memory too), and a native addon's Buffer (sharp's) is not
 * detachable; those views are copied instead. fs.readFile's Buffers (the media store's
 * pictures) and the exporters' files are transferred.
 */
export function transferableBuffers(views: readonly Uint8Array[]): ArrayBuffer[] {
  // isArrayBuffer, not instanceof: a Buffer made by native code may come from another realm's constructor.
  const whole = views.filter(
    (view) => isArrayBuffer(view.buffer) && view.byteOffset === 0 && view.byteLength === view.buffer.byteLength && !isMarkedAsUntransferable(view.buffer),
  );
  return [...new Set(whole.map((view) => view.buffer as ArrayBuffer))];
}

/** A Buffer over a view's bytes (a Buffer sent to a thread arrives as a plain Uint8Array), without copying. */
export function asBuffer(view: Uint8Array): Buffer {
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength);
}
