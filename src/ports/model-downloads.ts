/**
 * Fetching model files: from the Hugging Face Hub (or a mirror) into DATA_DIR/models,
 * and through Ollama's own `/api/pull`. Both report bytes as they arrive and stop on
 * the signal; a download that was stopped or cut resumes where it stopped.
 */

/** Bytes done so far and the total when known (Ollama learns a layer's size as it starts it). */
type TransferListener = (bytesDone: number, bytesTotal: number | null) => void;

export interface TransferOptions {
  onProgress: TransferListener;
  signal: AbortSignal;
}

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
  /** `POST /api/pull`, following its streamed progress. Throws DownloadError with Ollama's own message. */
  pull(model: string, options: TransferOptions): Promise<void>;
}

/** A download that could not be done, in words a user can act on. */
export class DownloadError extends Error {
  override name = 'DownloadError';
}
