/**
 * Fetching model files: from the Hugging Face Hub (or a mirror) into DATA_DIR/models,
 * and through Ollama's own `/api/pull`. Both report bytes as they arrive and stop on
 * the signal; a download that was stopped or cut resumes where it stopped.
 */

/** Bytes done so far and the total when known (Ollama learns a layer's size as it starts it). */
type TransferListener = (bytesDone: number, bytesTotal: number | null) => void;

export interface TransferOptions {
  onProgress: TransferListener;
  /** A transfer that went silent and is being tried again from where it stopped; `reason` in words (for the log). */
  onRetry?(reason: string): void;
  signal: AbortSignal;
}

/**
 * How long a download may go without progress (ms) before its transfer is abandoned and tried
 * again from where it stopped: a minute, far longer than any pause of a working CDN or Ollama,
 * far shorter than undici's 300 s body timeout. DOWNLOAD_STALL_TIMEOUT_MS sets it for the server.
 */
export const DOWNLOAD_STALL_TIMEOUT_MS = 60_000;

export interface HubRepoSource {
  repo: string;
  /** Branch, tag or commit; the download pins the commit it resolved to. */
  revision: string;
}

export interface HubFileSource extends HubRepoSource {
  /** Path of the file inside the repository. */
  file: string;
}

export interface HubDownloads {
  /**
   * A Stable Diffusion export in the diffusers/Optimum ONNX layout into `targetDir`
   * (assembled beside it and swapped in at the end). Throws DownloadError.
   */
  pullPictureModel(source: HubRepoSource, targetDir: string, options: TransferOptions): Promise<void>;
  /** One file into `targetPath` through `<targetPath>.partial`, checked against the size and sha256 the Hub lists. Throws DownloadError. */
  pullFile(source: HubFileSource, targetPath: string, options: TransferOptions): Promise<void>;
}

export interface OllamaModels {
  /** The models Ollama has (`name:tag`); null when it does not answer. */
  installedModels(signal: AbortSignal): Promise<string[] | null>;
  /**
   * `POST /api/pull`, following its streamed progress; a request that makes no progress for the
   * stall timeout is abandoned and made again (Ollama resumes its partial blobs). Throws
   * DownloadError with Ollama's own message, or saying what to do when it kept stalling.
   */
  pull(model: string, options: TransferOptions): Promise<void>;
}

/** A download that could not be done, in words a user can act on. */
export class DownloadError extends Error {
  override name = 'DownloadError';
}
