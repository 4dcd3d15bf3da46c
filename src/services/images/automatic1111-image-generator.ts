import { ImageGenerationError, type GeneratedPicture, type ImageGenerationOptions, type ImageGenerator, type ImageRequest } from './image-generator.js';

interface Txt2ImgResponse {
  images?: string[];
  info?: string;
}

/**
 * The txt2img HTTP API served by AUTOMATIC1111, Forge and SD.Next. The server
 * queues requests itself, so each prompt is its own call and both run at once.
 */
export class Automatic1111ImageGenerator implements ImageGenerator {
  readonly prefersBatches = false;
  readonly description: string;

  constructor(private readonly settings: { url: string; steps: number; timeoutMs: number }) {
    this.description = `AUTOMATIC1111 at ${settings.url}`;
  }

  async generate(requests: ImageRequest[], { signal, onProgress }: ImageGenerationOptions): Promise<GeneratedPicture[]> {
    let finished = 0;
    return Promise.all(
      requests.map(async (request) => {
        const picture = await this.txt2img(request, signal);
        onProgress?.(++finished / requests.length);
        return picture;
      }),
    );
  }

  private async txt2img(request: ImageRequest, signal: AbortSignal): Promise<GeneratedPicture> {
    const url = `${this.settings.url}/sdapi/v1/txt2img`;
    let response: Response;
    try {
      response = await fetch(url, {
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
        }),
        signal: AbortSignal.any([signal, AbortSignal.timeout(this.settings.timeoutMs)]),
      });
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      if ((error as Error).name === 'TimeoutError') {
        throw new ImageGenerationError(`${this.description} did not answer within ${this.settings.timeoutMs} ms (AUTOMATIC1111_TIMEOUT_MS)`, { cause: error });
      }
      throw new ImageGenerationError(`${this.description} is not reachable: start it with the --api flag (or set AUTOMATIC1111_URL to where it runs)`, {
        cause: error,
      });
    }
    if (!response.ok) {
      const detail = (await response.text().catch(() => '')).slice(0, 300);
      throw new ImageGenerationError(`${this.description} answered HTTP ${response.status} to txt2img${detail ? `: ${detail}` : ''}`);
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
