/** What the pipeline needs from an image model; one implementation per backend beside this file. */
export interface ImageRequest {
  prompt: string;
  negativePrompt: string;
  seed: number;
  width: number;
  height: number;
}

/** Image-to-image (diffusers' img2img): the init image re-noised by `strength` (0..1) and denoised towards the prompt. */
export interface ImageToImageRequest extends ImageRequest {
  initImage: Buffer;
  strength: number;
}

export interface GeneratedPicture {
  png: Buffer;
  width: number;
  height: number;
  seed: number;
  /** The prompt the model actually read, when it is not the one asked for (cut to the text encoder's length). */
  promptUsed?: string;
  /** How the prompt was cut to the text encoder's length, in words; shown as session warnings with the code PROMPT_CUT. */
  warnings?: string[];
}

export interface ImageGenerationOptions {
  signal: AbortSignal;
  /** 0..1 across the whole call, for progress inside the images stage. */
  onProgress?: (fraction: number) => void;
}

export interface ImageGenerator {
  /** Shown in logs and warnings, e.g. "AUTOMATIC1111 at http://127.0.0.1:7860". */
  readonly description: string;
  /**
   * True when several requests are cheaper in one call (one batched model run) than
   * one call each; the pipeline then waits for both prompts and sends them together.
   */
  readonly prefersBatches: boolean;
  /** One picture per request, in order. */
  generate(requests: ImageRequest[], options: ImageGenerationOptions): Promise<GeneratedPicture[]>;
  /** Image-to-image, one picture per request; absent on a backend that cannot do it. */
  imageToImage?(requests: ImageToImageRequest[], options: ImageGenerationOptions): Promise<GeneratedPicture[]>;
  /** Releases what the backend holds in this process (a model in memory), if anything. */
  close?(): Promise<void>;
}

export class ImageGenerationError extends Error {
  override name = 'ImageGenerationError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
