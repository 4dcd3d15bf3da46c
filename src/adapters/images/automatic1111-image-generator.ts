import { modelServerCall } from '../http/model-server-fetch.js';
import {
  ImageGenerationError,
  type GeneratedPicture,
  type ImageGenerationOptions,
  type ImageGenerator,
  type ImageRequest,
  type ImageToImageRequest,
} from '../../ports/image-generator.js';

interface Txt2ImgResponse {
  images?: string[];
  info?: string;
}

/**
 * The txt2img and img2img HTTP API served by AUTOMATIC1111, Forge and SD.Next.
 * The server queues requests itself, so each prompt is its own call and all run at once.
 */
export class Automatic1111ImageGenerator implements ImageGenerator {
  readonly prefersBatches = false;
  readonly description: string;

  constructor(private readonly settings: { url: string; steps: number; timeoutMs: number }) {
    this.description = `AUTOMATIC1111 at ${settings.url}`;
  }

  generate(requests: ImageRequest[], options: ImageGenerationOptions): Promise<GeneratedPicture[]> {
    return this.each(requests, options, (request) => this.call('txt2img', request, {}, options.signal));
  }

  /** `/sdapi/v1/img2img`: the init image as base64, `denoising_strength` the strength. */
  imageToImage(requests: ImageToImageRequest[], options: ImageGenerationOptions): Promise<GeneratedPicture[]> {
    return this.each(requests, options, ({ initImage, strength, ...request }) =>
      this.call('img2img', request, { init_images: [initImage.toString('base64')], denoising_strength: strength }, options.signal),
    );
  }

  private each<T>(requests: T[], { onProgress }: ImageGenerationOptions, paint: (request: T) => Promise<GeneratedPicture>): Promise<GeneratedPicture[]> {
    let finished = 0;
    return Promise.all(
      requests.map(async (request) => {
        const picture = await paint(request);
        onProgress?.(++finished / requests.length);
        return picture;
      }),
    );
  }

  private async call(endpoint: 'txt2img' | 'img2img', request: ImageRequest, extra: Record<string, unknown>, signal: AbortSignal): Promise<GeneratedPicture> {
    const url = `${this.settings.url}/sdapi/v1/${endpoint}`;
    // The configured timeout, not Node fetch's 300 s header limit: a server answers only when the picture is done.
    const http = modelServerCall({ timeoutMs: this.settings.timeoutMs }, signal);
    let response: Response;
    try {
      response = await http.fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          prompt: request.prompt,
          negative_prompt: request.negativePrompt,
          seed: request.seed,
          width: request.width,
          height: request.height,
          steps: this.settings.steps,
          batch_size: 1,
          n_iter: 1,
          ...extra,
        }),
      });
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      if (http.timedOut() || (error as Error).name === 'TimeoutError') {
        throw new ImageGenerationError(`${this.description} did not answer within ${this.settings.timeoutMs} ms (AUTOMATIC1111_TIMEOUT_MS)`, { cause: error });
      }
      throw new ImageGenerationError(`${this.description} is not reachable: start it with the --api flag (or set AUTOMATIC1111_URL to where it runs)`, {
        cause: error,
      });
    }
    if (!response.ok) {
      const detail = (await response.text().catch(() => '')).slice(0, 300);
      throw new ImageGenerationError(`${this.description} answered HTTP ${response.status} to ${endpoint}${detail ? `: ${detail}` : ''}`);
    }
    const body = (await response.json().catch(() => ({}))) as Txt2ImgResponse;
    const encoded = body.images?.[0];
    if (!encoded) throw new ImageGenerationError(`${this.description} returned no image`);
    return { png: Buffer.from(encoded, 'base64'), width: request.width, height: request.height, seed: seedFromInfo(body.info) ?? request.seed };
  }
}

/** The seed the server actually used (it picks one when asked for -1). */
function seedFromInfo(info: string | undefined): number | null {
  try {
    const seed = (JSON.parse(info ?? '{}') as { seed?: unknown }).seed;
    return typeof seed === 'number' && Number.isSafeInteger(seed) ? seed : null;
  } catch {
    return null;
  }
}
