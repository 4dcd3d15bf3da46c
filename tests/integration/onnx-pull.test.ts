import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Agent, getGlobalDispatcher, setGlobalDispatcher } from 'undici';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { pullModel, selectModelFiles } from '../../src/adapters/downloads/hugging-face-hub.js';
import { DownloadError } from '../../src/ports/model-downloads.js';
import { HUB_COMMIT, repoFilesOf, startFakeHub, type FakeHub, type HubFileSpec } from '../support/fake-hub.js';
import { looksLikeModelDir, SOURCE_FILE, validateModelDir } from '../../packages/onnx-diffusion/src/index.js';
import { buildTinySdModel, type TinyModel } from '../../packages/onnx-diffusion/tests/support/tiny-sd-model.js';

/**
 * `npm run models:pull` against a fake Hugging Face Hub on loopback (HF_ENDPOINT):
 * the model API with ?blobs=true, /resolve/ with a redirect to a "CDN" for LFS
 * files, HTTP Range, and failures injected on demand.
 */
const COMMIT = HUB_COMMIT;
const REPO = 'story-agent/tiny-sd-onnx';

async function repoFiles(model: TinyModel): Promise<Map<string, HubFileSpec>> {
  const files = await repoFilesOf(model.dir);
  // What real repositories carry besides the ONNX export; none of it is needed.
  files.set('unet/diffusion_pytorch_model.safetensors', { content: Buffer.alloc(4096, 7), lfs: true });
  files.set('vae_encoder/model.onnx', { content: Buffer.alloc(2048, 3), lfs: true });
  files.set('controlnet/model.onnx', { content: Buffer.alloc(2048, 5), lfs: true });
  files.set('README.md', { content: Buffer.from('# tiny\n'), lfs: false });
  files.set('Sample.png', { content: Buffer.alloc(512, 1), lfs: true });
  return files;
}

let model: TinyModel;
let files: Map<string, HubFileSpec>;
let hub: FakeHub;
let work: string;
let target: string;

beforeAll(async () => {
  model = await buildTinySdModel({ externalData: true });
  files = await repoFiles(model);
});

afterAll(async () => {
  await model.remove();
});

beforeEach(async () => {
  hub = await startFakeHub(new Map([[REPO, new Map(files)]]));
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'story-agent-pull-'));
  target = path.join(work, 'models', 'sd');
});

afterEach(async () => {
  await hub.close();
  await fs.rm(work, { recursive: true, force: true });
});

const pull = (overrides: Partial<Parameters<typeof pullModel>[0]> = {}) =>
  pullModel({ repo: REPO, targetDir: target, endpoint: hub.url, retryDelayMs: 1, ...overrides });

const resolves = () => hub.requests.filter((request) => request.url.includes('/resolve/'));

describe('models:pull', () => {
  it('downloads only what the pipeline reads, pinned to the commit, verified, into a folder the loader accepts', async () => {
    const result = await pull();
    expect(result.upToDate).toBe(false);
    expect(result.listing.commit).toBe(COMMIT);
    const wanted = selectModelFiles([...files.keys()]).sort();
    expect(result.listing.files.map((file) => file.path)).toEqual(wanted);
    expect(wanted).toContain('unet/model.onnx_data');
    expect(wanted).not.toContain('unet/diffusion_pytorch_model.safetensors');
    expect(wanted).not.toContain('vae_encoder/model.onnx');
    expect(wanted).not.toContain('controlnet/model.onnx');
    expect(resolves().every((request) => request.url.includes(`/resolve/${COMMIT}/`))).toBe(true);
    for (const file of wanted) expect((await fs.readFile(path.join(target, file))).equals(files.get(file)!.content)).toBe(true);
    expect(looksLikeModelDir(target)).toBe(true);
    expect(validateModelDir(target).name).toBe('story-agent/tiny-sd');
    const manifest = JSON.parse(await fs.readFile(path.join(target, SOURCE_FILE), 'utf8')) as { repo: string; commit: string };
    expect(manifest).toMatchObject({ repo: REPO, commit: COMMIT });
    await expect(fs.stat(`${target}.download`)).rejects.toThrow();
  });

  it('resumes a file whose connection dropped, with an HTTP Range request from where it stopped', async () => {
    const data = files.get('unet/model.onnx_data')!.content;
    const cut = Math.floor(data.length / 3);
    hub.dropAfter.set('unet/model.onnx_data', cut);
    const retries: string[] = [];
    await pull({ progress: { onRetry: (file) => retries.push(file.path) } });
    expect(retries).toEqual(['unet/model.onnx_data']);
    // The Range header travels through the /resolve/ redirect to the CDN, which answers 206.
    const ranged = hub.requests.filter((request) => request.url.startsWith('/cdn/') && request.url.includes('model.onnx_data') && request.range);
    expect(ranged.map((request) => request.range)).toEqual([`bytes=${cut}-`]);
    expect((await fs.readFile(path.join(target, 'unet/model.onnx_data'))).equals(data)).toBe(true);
  });

  it('abandons a transfer that stops sending with its connection open, and resumes it with a Range request', async () => {
    const data = files.get('unet/model.onnx_data')!.content;
    const stall = Math.floor(data.length / 2);
    hub.stallAfter.set('unet/model.onnx_data', stall);
    const retries: string[] = [];
    await pull({ stallTimeoutMs: 300, progress: { onRetry: (file, _attempt, reason) => retries.push(`${file.path}: ${reason}`) } });
    expect(retries).toEqual([`unet/model.onnx_data: no data for 0.3 s after ${stall} bytes`]);
    const ranged = hub.requests.filter((request) => request.url.startsWith('/cdn/') && request.url.includes('model.onnx_data') && request.range);
    expect(ranged.map((request) => request.range)).toEqual([`bytes=${stall}-`]);
    expect((await fs.readFile(path.join(target, 'unet/model.onnx_data'))).equals(data)).toBe(true);
  });

  it("leaves the limit to the stall timeout: a CDN that starts answering later than undici's own timeouts is still waited for", async () => {
    // Node's fetch goes through the global dispatcher, whose timeouts (300 s by default) end a
    // transfer whatever the stall timeout says; here they are 0.5 s and the CDN answers after 1.5 s.
    const data = files.get('unet/model.onnx_data')!.content;
    hub.lateHeaders.set('unet/model.onnx_data', 1500);
    const before = getGlobalDispatcher();
    setGlobalDispatcher(new Agent({ headersTimeout: 500, bodyTimeout: 500 }));
    try {
      await pull({ stallTimeoutMs: 10_000, retries: 0 });
    } finally {
      setGlobalDispatcher(before);
    }
    expect((await fs.readFile(path.join(target, 'unet/model.onnx_data'))).equals(data)).toBe(true);
  });

  it('resumes a .partial left by an interrupted earlier run', async () => {
    const data = files.get('unet/model.onnx_data')!.content;
    const staging = `${target}.download`;
    await fs.mkdir(path.join(staging, 'unet'), { recursive: true });
    await fs.writeFile(path.join(staging, '.pulling.json'), JSON.stringify({ repo: REPO, commit: COMMIT }));
    await fs.writeFile(path.join(staging, 'unet/model.onnx_data.partial'), data.subarray(0, 1000));
    const result = await pull();
    expect(hub.requests.find((request) => request.url.startsWith('/cdn/') && request.url.includes('model.onnx_data'))?.range).toBe('bytes=1000-');
    expect(result.downloadedBytes).toBe(result.totalBytes - 1000);
    expect((await fs.readFile(path.join(target, 'unet/model.onnx_data'))).equals(data)).toBe(true);
  });

  it('rejects a file that fails its sha256, names it, and keeps neither it nor a broken model', async () => {
    hub.corrupt.add('unet/model.onnx');
    const error = await pull().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DownloadError);
    expect((error as Error).message).toMatch(
      /^unet\/model\.onnx failed its checksum \(sha256 [0-9a-f]{64}, expected [0-9a-f]{64}\); the damaged download was removed, run the pull again$/,
    );
    await expect(fs.stat(path.join(`${target}.download`, 'unet/model.onnx.partial'))).rejects.toThrow();
    await expect(fs.stat(target)).rejects.toThrow();
    // Rerun once the source is healthy: files verified before the failure are kept; the bad one and the rest are fetched.
    hub.corrupt.clear();
    hub.requests.length = 0;
    await pull();
    const fetched = resolves().map((request) => request.url.replace(`/${REPO}/resolve/${COMMIT}/`, ''));
    expect(fetched).toEqual(['unet/model.onnx', 'unet/model.onnx_data', 'vae_decoder/config.json', 'vae_decoder/model.onnx']);
  });

  it('checks small non-LFS files against their git blob id', async () => {
    hub.corrupt.add('scheduler/scheduler_config.json');
    await expect(pull()).rejects.toThrow(/scheduler\/scheduler_config\.json failed its checksum \(git blob/);
  });

  it('does nothing when the model is already there at that commit', async () => {
    await pull();
    hub.requests.length = 0;
    const again = await pull();
    expect(again.upToDate).toBe(true);
    expect(resolves()).toHaveLength(0);
  });

  it('refuses a repository that is not a Stable Diffusion ONNX export, before downloading anything', async () => {
    hub.repos.get(REPO)!.delete('unet/model.onnx');
    await expect(pull()).rejects.toThrow(`${REPO} at "main" is not a Stable Diffusion ONNX export in the diffusers/Optimum layout: it has no unet/model.onnx`);
    expect(resolves()).toHaveLength(0);
  });

  it('names a repository that does not exist', async () => {
    await expect(pull({ repo: 'nobody/nothing' })).rejects.toThrow('nobody/nothing at revision "main" was not found');
  });

  it('sends HF_TOKEN as a bearer token, and says to set it when a gated repository refuses', async () => {
    hub.requireToken = 'hf_secret';
    await expect(pull()).rejects.toThrow(/set HF_TOKEN/);
    hub.requests.length = 0;
    await pull({ token: 'hf_secret' });
    expect(hub.requests.filter((request) => !request.url.startsWith('/cdn/')).every((request) => request.authorization === 'Bearer hf_secret')).toBe(true);
  });

  it('replaces a model it pulled before, and keeps a folder it did not make under another name', async () => {
    await fs.mkdir(target, { recursive: true });
    await fs.writeFile(path.join(target, 'my-own-export.txt'), 'precious');
    const result = await pull();
    expect(result.previousDirKeptAt).toMatch(/sd\.previous-/);
    expect(await fs.readFile(path.join(result.previousDirKeptAt!, 'my-own-export.txt'), 'utf8')).toBe('precious');
    // A pull of another commit replaces ours outright.
    await fs.writeFile(path.join(target, SOURCE_FILE), JSON.stringify({ repo: REPO, commit: 'older' }));
    expect((await pull()).previousDirKeptAt).toBeNull();
    expect(await fs.readdir(`${work}/models`)).toEqual(expect.arrayContaining(['sd']));
  });
});

describe('npm run models:pull (the script)', () => {
  const run = promisify(execFile);
  // As `npm run models:pull` runs it: compiled JavaScript (built by the lane's global set-up).
  const pullModelScript = [path.resolve('dist/server/src/main/pull-model.js')];

  it('pulls into SD_MODEL_DIR from HF_ENDPOINT, prints each file and says when it is done', async () => {
    const { stdout } = await run(process.execPath, [...pullModelScript, REPO], {
      env: { ...process.env, HF_ENDPOINT: hub.url, SD_MODEL_DIR: target, DATABASE_URL: '' },
    });
    expect(stdout).toContain(`Pulling ${REPO} (revision main) into ${target}`);
    expect(stdout).toContain('  unet/model.onnx_data (');
    expect(stdout).toMatch(/Done: \d+ files, .* verified, in /);
    expect(looksLikeModelDir(target)).toBe(true);
    const again = await run(process.execPath, [...pullModelScript, REPO, '--dir', target], { env: { ...process.env, HF_ENDPOINT: hub.url } });
    expect(again.stdout).toContain('Already up to date');
  });

  it.each([
    ['into SD_MODEL_DIR', (dir: string) => ({ args: [], env: { SD_MODEL_DIR: dir, DATABASE_URL: '' } })],
    ['into --dir', (dir: string) => ({ args: ['--dir', dir], env: {} })],
  ])('abandons a stalled transfer after DOWNLOAD_STALL_TIMEOUT_MS and resumes it, pulling %s', async (_where, how) => {
    const stall = Math.floor(files.get('unet/model.onnx_data')!.content.length / 2);
    hub.stallAfter.set('unet/model.onnx_data', stall);
    const { args, env } = how(target);
    // The default 60 s would outlast the test.
    const { stdout } = await run(process.execPath, [...pullModelScript, REPO, ...args], {
      env: { ...process.env, HF_ENDPOINT: hub.url, DOWNLOAD_STALL_TIMEOUT_MS: '300', ...env },
    });
    expect(stdout).toContain(`  unet/model.onnx_data: no data for 0.3 s after ${stall} bytes; retrying (1) from where it stopped`);
    expect(stdout).toMatch(/Done: \d+ files, .* verified, in /);
    expect(looksLikeModelDir(target)).toBe(true);
  });

  it('exits 2 naming DOWNLOAD_STALL_TIMEOUT_MS when it is not a valid value, with --dir too', async () => {
    const failure = await run(process.execPath, [...pullModelScript, REPO, '--dir', target], {
      env: { ...process.env, HF_ENDPOINT: hub.url, DOWNLOAD_STALL_TIMEOUT_MS: '50' },
    }).catch((error: { code: number; stderr: string }) => error);
    expect(failure).toMatchObject({ code: 2 });
    expect((failure as { stderr: string }).stderr).toContain('DOWNLOAD_STALL_TIMEOUT_MS');
    expect(resolves()).toHaveLength(0);
  });

  it('exits 1 with the reason when the pull fails', async () => {
    const failure = await run(process.execPath, [...pullModelScript, 'nobody/nothing', '--dir', target], {
      env: { ...process.env, HF_ENDPOINT: hub.url },
    }).catch((error: { code: number; stderr: string }) => error);
    expect(failure).toMatchObject({ code: 1 });
    expect((failure as { stderr: string }).stderr).toContain('models:pull failed: nobody/nothing at revision "main" was not found');
  });
});
