/**
 * What the set-up (readiness and model downloads) needs from outside, and what
 * it offers the generation pipeline: waiting for a model that is being downloaded.
 */

/** A part of the installation the set-up panel reports on. */
export enum SetupComponent {
  STORY_MODEL = 'STORY_MODEL',
  PICTURE_MODEL = 'PICTURE_MODEL',
  DATABASE = 'DATABASE',
}

/** How a download ended, for whoever waited for it. */
export type DownloadOutcome = { ok: true } | { ok: false; message: string };

export interface ModelDownloadWaits {
  /** Whether a download of the component's model is running, in this process or another sharing REDIS_URL; false when that cannot be told. */
  isDownloading(component: SetupComponent): Promise<boolean>;
  /** Resolves with the outcome once the running download (here or in another process) ends; null at once when none runs. Rejects when `signal` aborts. */
  whenDownloaded(component: SetupComponent, signal: AbortSignal): Promise<DownloadOutcome | null>;
}

/** The checks behind the readiness report; each throws an Error whose message says what is wrong. */
export interface SetupProbes {
  checkDatabase(signal: AbortSignal): Promise<void>;
  /** The configured text server with its model (TEXT_BACKEND=openai). */
  checkTextServer(signal: AbortSignal): Promise<void>;
  checkAutomatic1111(url: string, signal: AbortSignal): Promise<void>;
  /** Whether a regular file is at `file`. */
  hasFile(file: string): Promise<boolean>;
  /** Throws, naming the file that is missing or malformed, unless `dir` holds a complete Stable Diffusion ONNX export. */
  checkPictureModel(dir: string): Promise<void>;
}
