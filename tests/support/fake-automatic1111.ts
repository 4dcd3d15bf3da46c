import http from 'node:http';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';

/**
 * A stand-in for AUTOMATIC1111's web UI API (`--api`), spoken over real HTTP so the
 * client's request building, timeouts and error handling are exercised end to end.
 * Pictures are real PNGs, deterministic from seed + prompt + size.
 */

export interface FakeAutomatic1111Options {
  latencyMs?: number;
  failWith?: { status: number; body: string } | null;
  /** Latency of img2img answers (the pass over a composite), apart from txt2img's. */
  img2imgLatencyMs?: number;
  /** Per-request latency; overrides latencyMs (benchmarks give each picture its own). */
  latencyFor?: (call: Txt2ImgCall) => number;
  /** Limits failWith to the requests this accepts (all when unset). */
  failWhen?: (call: Txt2ImgCall) => boolean;
  /** All-black pictures, as a safety filter or a float16 overflow gives, for the requests this accepts. */
  blackWhen?: (call: Txt2ImgCall) => boolean;
  /** Encodes pictures as this (servers set to save JPEG or WebP send those); PNG when unset. */
  format?: 'png' | 'jpeg' | 'webp';
  /** Paints at this multiple of the asked size (an upscaler or hires fix left on). */
  scale?: number;
}

interface Txt2ImgCall {
  prompt: string;
  negative_prompt: string;
  seed: number;
  width: number;
  height: number;
  steps: number;
  batch_size: number;
  /** performance.now() when the request arrived and when it was answered. */
  receivedAt: number;
  answeredAt?: number;
}

/** One `/sdapi/v1/img2img` request as received. */
interface Img2ImgCall {
  prompt: string;
  denoisingStrength: number;
  width: number;
  height: number;
  /** The decoded init image's size. */
  initWidth: number;
  initHeight: number;
}

export interface FakeAutomatic1111 {
  url: string;
  calls: Txt2ImgCall[];
  img2imgCalls: Img2ImgCall[];
  options: FakeAutomatic1111Options;
  close(): Promise<void>;
}

const MAX_SIDE = 4096;
const CHARACTER_BACKDROP: Rgb = [0xf4, 0xf4, 0xf0];

type Rgb = [number, number, number];

export async function startFakeAutomatic1111(options: FakeAutomatic1111Options = {}): Promise<FakeAutomatic1111> {
  const calls: Txt2ImgCall[] = [];
  const img2imgCalls: Img2ImgCall[] = [];
  const timers = new Set<NodeJS.Timeout>();

  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/sdapi/v1/options') {
      req.resume();
      sendJson(res, 200, {});
      return;
    }
    if (req.method === 'POST' && path === '/sdapi/v1/txt2img') {
      readBody(req)
        .then((raw) => handleTxt2Img(raw, res))
        .catch((error: unknown) => {
          if (!res.headersSent && !res.destroyed) sendJson(res, 500, { error: 'InternalError', detail: String(error) });
        });
      return;
    }
    if (req.method === 'POST' && path === '/sdapi/v1/img2img') {
      readBody(req)
        .then((raw) => handleImg2Img(raw, res))
        .catch((error: unknown) => {
          if (!res.headersSent && !res.destroyed) sendJson(res, 500, { error: 'InternalError', detail: String(error) });
        });
      return;
    }
    req.resume();
    sendJson(res, 404, { detail: 'Not Found' });
  });

  /**
   * img2img as the real server takes it (`init_images` base64, `denoising_strength`):
   * answers with the init image at the size asked, colours shifted by the strength,
   * so a test can tell a harmonised picture from the plain one.
   */
  async function handleImg2Img(raw: string, res: http.ServerResponse): Promise<void> {
    const body = JSON.parse(raw) as { prompt?: string; denoising_strength?: number; width?: number; height?: number; init_images?: string[]; seed?: number };
    const init = body.init_images?.[0];
    if (!init) return sendJson(res, 422, { detail: [{ loc: ['body', 'init_images'], msg: 'field required', type: 'value_error.missing' }] });
    const strength = typeof body.denoising_strength === 'number' ? body.denoising_strength : 0.75;
    const width = integer(body.width, 512);
    const height = integer(body.height, 512);
    const initImage = sharp(Buffer.from(init, 'base64'));
    const { width: initWidth = 0, height: initHeight = 0 } = await initImage.metadata();
    img2imgCalls.push({ prompt: body.prompt ?? '', denoisingStrength: strength, width, height, initWidth, initHeight });
    const latency = options.img2imgLatencyMs ?? 0;
    if (latency > 0 && !(await wait(latency, res))) return;
    const png = await initImage
      .resize(width, height, { fit: 'fill' })
      .modulate({ hue: Math.round(strength * 90) })
      .png()
      .toBuffer();
    sendJson(res, 200, {
      images: [png.toString('base64')],
      parameters: body,
      info: JSON.stringify({ prompt: body.prompt, seed: integer(body.seed, 1), width, height }),
    });
  }

  async function handleTxt2Img(raw: string, res: http.ServerResponse): Promise<void> {
    let body: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(raw);
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('body must be a JSON object');
      body = parsed as Record<string, unknown>;
    } catch (error) {
      sendJson(res, 422, { detail: [{ loc: ['body'], msg: error instanceof Error ? error.message : 'invalid JSON', type: 'value_error' }] });
      return;
    }

    const prompt = typeof body.prompt === 'string' ? body.prompt : '';
    const call: Txt2ImgCall = {
      prompt,
      negative_prompt: typeof body.negative_prompt === 'string' ? body.negative_prompt : '',
      seed: integer(body.seed, -1),
      width: integer(body.width, 512),
      height: integer(body.height, 512),
      steps: integer(body.steps, 20),
      batch_size: integer(body.batch_size, 1),
      receivedAt: performance.now(),
    };
    calls.push(call);

    const invalid = [
      ['width', call.width],
      ['height', call.height],
    ].find(([, v]) => (v as number) < 1 || (v as number) > MAX_SIDE);
    if (invalid) {
      sendJson(res, 422, { detail: [{ loc: ['body', invalid[0]], msg: `must be between 1 and ${MAX_SIDE}`, type: 'value_error' }] });
      return;
    }

    // Read at arrival so a test flipping failWith mid-flight affects only later requests.
    const failure = !options.failWhen || options.failWhen(call) ? (options.failWith ?? null) : null;
    const latency = Math.max(0, options.latencyFor?.(call) ?? options.latencyMs ?? 0);
    if (latency > 0 && !(await wait(latency, res))) return;

    if (failure) {
      const isJson = looksLikeJson(failure.body);
      res.writeHead(failure.status, { 'content-type': isJson ? 'application/json' : 'text/plain; charset=utf-8' });
      res.end(failure.body);
      return;
    }

    // Like the real server: -1 means "pick one", reported back in info.
    const seed = call.seed >= 0 ? call.seed : hash(`${prompt}|random`) % 4294967295;
    const batch = Math.max(1, Math.min(8, call.batch_size));
    const seeds = Array.from({ length: batch }, (_, k) => seed + k);
    const scale = options.scale ?? 1;
    const black = options.blackWhen?.(call) === true;
    const images = await Promise.all(
      seeds.map(async (s) => {
        const [width, height] = [Math.round(call.width * scale), Math.round(call.height * scale)];
        const png = black
          ? await sharp({ create: { width, height, channels: 3, background: { r: 0, g: 0, b: 0 } } })
              .png()
              .toBuffer()
          : await renderPicture(prompt, s, width, height);
        return options.format && options.format !== 'png' ? sharp(png).toFormat(options.format).toBuffer() : png;
      }),
    );
    if (res.destroyed) return;
    call.answeredAt = performance.now();
    sendJson(res, 200, {
      images: images.map((png) => png.toString('base64')),
      parameters: body,
      info: JSON.stringify({
        prompt,
        all_prompts: seeds.map(() => prompt),
        negative_prompt: call.negative_prompt,
        seed,
        all_seeds: seeds,
        width: call.width,
        height: call.height,
        steps: call.steps,
      }),
    });
  }

  /** Resolves false (and never answers) when the client hung up during the simulated render. */
  function wait(ms: number, res: http.ServerResponse): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        res.off('close', onClose);
        resolve(!res.destroyed);
      }, ms);
      timers.add(timer);
      const onClose = () => {
        clearTimeout(timer);
        timers.delete(timer);
        resolve(false);
      };
      res.once('close', onClose);
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    img2imgCalls,
    options,
    close: () =>
      new Promise<void>((resolve, reject) => {
        for (const timer of timers) clearTimeout(timer);
        timers.clear();
        if (!server.listening) return resolve();
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function integer(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) ? Math.trunc(value) : fallback;
}

function looksLikeJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** FNV-1a: stable across runs and platforms, unlike anything seeded from time. */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function hsl(h: number, s: number, l: number): Rgb {
  const a = s * Math.min(l, 1 - l);
  const f = (n: number) => {
    const k = (n + h / 30) % 12;
    return Math.round(255 * (l - a * Math.max(-1, Math.min(k - 3, 9 - k, 1))));
  };
  return [f(0), f(8), f(4)];
}

function renderPicture(prompt: string, seed: number, width: number, height: number): Promise<Buffer> {
  // The character agent asks for a full-body figure; anything else is a setting.
  const pixels = /full body|standing|portrait/i.test(prompt) ? drawCharacter(seed, prompt, width, height) : drawLandscape(seed, prompt, width, height);
  return sharp(pixels, { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();
}

/** Sky fading to a pale horizon over a ground band, so a standing figure has a floor. */
function drawLandscape(seed: number, prompt: string, width: number, height: number): Buffer {
  const sky = hsl(hash(`sky:${seed}`) % 360, 0.6, 0.55);
  const horizonColour: Rgb = [236, 232, 220];
  const ground = hsl(80 + (hash(`ground:${seed}:${prompt}`) % 60), 0.45, 0.35);
  const horizon = Math.round(height * 0.65);
  const out = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    let colour: Rgb;
    if (y < horizon) {
      const t = horizon > 1 ? y / (horizon - 1) : 0;
      colour = [0, 1, 2].map((c) => Math.round(sky[c] + (horizonColour[c] - sky[c]) * t)) as Rgb;
    } else {
      const t = (y - horizon) / Math.max(1, height - horizon);
      colour = ground.map((v) => Math.round(v * (1 - 0.3 * t))) as Rgb;
    }
    for (let x = 0; x < width; x++) {
      const p = (y * width + x) * 3;
      out[p] = colour[0];
      out[p + 1] = colour[1];
      out[p + 2] = colour[2];
    }
  }
  return out;
}

/** A dark head-and-body figure on the plain near-white backdrop the character prompts ask for. */
function drawCharacter(seed: number, prompt: string, width: number, height: number): Buffer {
  const figure = hsl((hash(`figure:${seed}`) + (hash(prompt) % 40)) % 360, 0.7, 0.3);
  const unit = Math.min(width, height);
  const cx = width / 2;
  const head = { x: cx, y: height * 0.32, r: unit * 0.12 };
  const body = { x: cx, y: height * 0.62, rx: unit * 0.2, ry: height * 0.22 };
  const out = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const px = x + 0.5;
      const py = y + 0.5;
      // Signed distance (px) to each shape's edge; a 1px ramp gives anti-aliased edges like a real render.
      const dHead = Math.hypot(px - head.x, py - head.y) - head.r;
      const nx = (px - body.x) / body.rx;
      const ny = (py - body.y) / body.ry;
      const dBody = (Math.hypot(nx, ny) - 1) * Math.min(body.rx, body.ry);
      const coverage = Math.max(0, Math.min(1, 0.5 - Math.min(dHead, dBody)));
      const p = (y * width + x) * 3;
      for (let c = 0; c < 3; c++) {
        out[p + c] = Math.round(CHARACTER_BACKDROP[c] + (figure[c] - CHARACTER_BACKDROP[c]) * coverage);
      }
    }
  }
  return out;
}
