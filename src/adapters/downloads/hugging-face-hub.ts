import { createHash, type Hash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { fetch as undiciFetch } from 'undici';
import { COMPONENT_DIRS, CONFIG_DIRS, MODEL_FILES, SOURCE_FILE } from '../../../packages/onnx-diffusion/src/index.js';
import {
  DOWNLOAD_STALL_TIMEOUT_MS,
  DownloadError,
  type HubDownloads,
  type HubFileSource,
  type HubRepoSource,
  type TransferOptions,
} from '../../ports/model-downloads.js';
import { modelServerAgent } from '../http/model-server-fetch.js';

/**
 * Downloads from the Hugging Face Hub (or a mirror at HF_ENDPOINT): a Stable
 * Diffusion ONNX export (the repository listed at a revision, only the files
 * the in-process pipeline reads) or one file (a GGUF for the embedded text
 * backend). Each file goes into a `.partial` file that a rerun resumes with an
 * HTTP Range request, and is checked against the size the Hub lists, LFS files
 * against their sha256 and the others against their git blob id, before it
 * takes its final name. A picture model is assembled beside the old one and
 * swapped in at the end, so a half-finished pull never breaks a working model.
 */
const DEFAULT_REVISION = 'main';

export interface HubFile {
  path: string;
  size: number;
  /** LFS content hash, when the file is stored in LFS. */
  sha256: string | null;
  /** git blob sha1 (for non-LFS files it checks the content). */
  blobId: string | null;
}

interface RepoListing {
  repo: string;
  revision: string;
  /** The commit the revision resolved to; downloads use it so a moving branch cannot mix versions. */
  commit: string;
  files: HubFile[];
}

interface PullProgress {
  /** The files to fetch and their total size are known. */
  onListing?(listing: RepoListing, totalBytes: number): void;
  /** A file starts (resumedBytes > 0 when a .partial was found). */
  onFileStart?(file: HubFile, resumedBytes: number): void;
  onBytes?(count: number): void;
  onFileDone?(file: HubFile): void;
  onRetry?(file: HubFile, attempt: number, reason: string): void;
}

export interface PullOptions {
  repo: string;
  revision?: string;
  targetDir: string;
  endpoint?: string;
  token?: string;
  progress?: PullProgress;
  /** Network retries per file (each resumes where the last stopped). */
  retries?: number;
  retryDelayMs?: number;
  /**
   * A file's transfer that receives no byte for this long (ms) is abandoned and retried from
   * where it stopped (default DOWNLOAD_STALL_TIMEOUT_MS). Without it a CDN that stops sending
   * but keeps the connection open would hold the download for undici's 300 s body timeout per try.
   */
  stallTimeoutMs?: number;
  fetch?: typeof fetch;
  /** Stops the download; what was fetched stays in `.partial` files for the next try. */
  signal?: AbortSignal;
}

export interface PullResult {
  listing: RepoListing;
  targetDir: string;
  /** Bytes actually transferred (0 when the model was already there). */
  downloadedBytes: number;
  totalBytes: number;
  upToDate: boolean;
  /** Where a model that was not ours went (renamed rather than deleted). */
  previousDirKeptAt: string | null;
}

interface Sibling {
  rfilename: string;
  size?: number;
  blobId?: string;
  lfs?: { sha256?: string; oid?: string; size?: number };
}

const REQUIRED = [
  MODEL_FILES.index,
  MODEL_FILES.scheduler,
  MODEL_FILES.vocab,
  MODEL_FILES.merges,
  MODEL_FILES.textEncoder,
  MODEL_FILES.unet,
  MODEL_FILES.vaeDecoder,
];

/** Files of a repository the pipeline needs: the index, tokenizer/ and scheduler/, and each model's graph, external weights and config. */
export function selectModelFiles(paths: string[]): string[] {
  return paths.filter((file) => {
    if (file === MODEL_FILES.index) return true;
    const [dir, name, ...rest] = file.split('/');
    if (rest.length > 0 || !name) return false;
    if ((CONFIG_DIRS as readonly string[]).includes(dir)) return true;
    if (!(COMPONENT_DIRS as readonly string[]).includes(dir)) return false;
    // model.onnx plus its external data, whatever the exporter named it (model.onnx_data, model.onnx.data, weights.pb).
    return name === 'model.onnx' || name === 'config.json' || name.endsWith('.onnx_data') || name.endsWith('.onnx.data') || name === 'weights.pb';
  });
}

type ListOptions = Pick<PullOptions, 'repo' | 'revision' | 'endpoint' | 'token' | 'fetch' | 'signal'>;

/** The picture model's files at a revision; throws DownloadError when the repository is no Stable Diffusion ONNX export. */
async function listRepo(options: ListOptions): Promise<RepoListing> {
  const { listing, available } = await listFiles(options, (paths) => selectModelFiles(paths));
  const missing = REQUIRED.filter((file) => !available.has(file));
  if (missing.length > 0) {
    throw new DownloadError(
      `${options.repo} at "${listing.revision}" is not a Stable Diffusion ONNX export in the diffusers/Optimum layout: it has no ${missing.join(', ')}`,
    );
  }
  return listing;
}

/** Lists a repository at a revision (`GET /api/models/<repo>/revision/<rev>?blobs=true`) and keeps the files `select` picks. */
async function listFiles(options: ListOptions, select: (paths: string[]) => string[]): Promise<{ listing: RepoListing; available: Set<string> }> {
  const endpoint = (options.endpoint ?? 'https://huggingface.co').replace(/\/+$/, '');
  const revision = options.revision ?? DEFAULT_REVISION;
  const doFetch = options.fetch ?? fetch;
  if (!/^[\w.-]+\/[\w.-]+$/.test(options.repo)) throw new DownloadError(`"${options.repo}" is not a Hugging Face repository id (owner/name)`);
  const url = `${endpoint}/api/models/${options.repo}/revision/${encodeURIComponent(revision)}?blobs=true`;
  let response: Response;
  try {
    response = await doFetch(url, { headers: authHeaders(options.token), signal: options.signal });
  } catch (error) {
    options.signal?.throwIfAborted();
    throw new DownloadError(`cannot reach ${endpoint} (${(error as Error).message}); check the network, or set HF_ENDPOINT to a mirror`, { cause: error });
  }
  if (response.status === 401 || response.status === 403) {
    throw new DownloadError(
      `${endpoint} refused to list ${options.repo} (HTTP ${response.status}): the repository is private or gated; set HF_TOKEN to a token that can read it`,
    );
  }
  if (response.status === 404) throw new DownloadError(`${options.repo} at revision "${revision}" was not found on ${endpoint}`);
  if (!response.ok) throw new DownloadError(`${endpoint} answered HTTP ${response.status} when listing ${options.repo}`);
  const body = (await response.json()) as { sha?: string; siblings?: Sibling[] };
  const siblings = body.siblings ?? [];
  const wanted = new Set(select(siblings.map((s) => s.rfilename)));
  const files = siblings
    .filter((s) => wanted.has(s.rfilename))
    .map((s) => ({
      path: s.rfilename,
      size: s.lfs?.size ?? s.size ?? -1,
      sha256: s.lfs?.sha256 ?? (s.lfs?.oid && /^[0-9a-f]{64}$/.test(s.lfs.oid) ? s.lfs.oid : null),
      blobId: s.blobId ?? null,
    }))
    .sort((a, b) => a.path.localeCompare(b.path));
  const unsized = files.filter((file) => file.size < 0);
  if (unsized.length > 0) throw new DownloadError(`${endpoint} did not list the size of ${unsized.map((f) => f.path).join(', ')}; cannot verify the download`);
  return { listing: { repo: options.repo, revision, commit: body.sha ?? revision, files }, available: wanted };
}

interface SourceManifest {
  repo: string;
  revision: string;
  commit: string;
  files: HubFile[];
  pulledAt: string;
}

export async function pullModel(options: PullOptions): Promise<PullResult> {
  const listing = await listRepo(options);
  const endpoint = (options.endpoint ?? 'https://huggingface.co').replace(/\/+$/, '');
  const targetDir = path.resolve(options.targetDir);
  const totalBytes = listing.files.reduce((sum, file) => sum + file.size, 0);
  options.progress?.onListing?.(listing, totalBytes);
  if (await isSameModel(targetDir, listing)) {
    return { listing, targetDir, downloadedBytes: 0, totalBytes, upToDate: true, previousDirKeptAt: null };
  }
  const staging = `${targetDir}.download`;
  await fsp.mkdir(staging, { recursive: true });
  // A staging folder from a pull of another commit would mix versions.
  const stagedFor = await readManifest(path.join(staging, '.pulling.json'));
  if (stagedFor && (stagedFor.repo !== listing.repo || stagedFor.commit !== listing.commit)) {
    await fsp.rm(staging, { recursive: true, force: true });
    await fsp.mkdir(staging, { recursive: true });
  }
  await fsp.writeFile(path.join(staging, '.pulling.json'), JSON.stringify({ ...listing, pulledAt: new Date().toISOString() }));

  let downloadedBytes = 0;
  for (const file of listing.files) {
    downloadedBytes += await downloadFile(resolveUrl(endpoint, listing, file), path.join(staging, file.path), file, options);
  }
  const manifest: SourceManifest = {
    repo: listing.repo,
    revision: listing.revision,
    commit: listing.commit,
    files: listing.files,
    pulledAt: new Date().toISOString(),
  };
  await fsp.writeFile(path.join(staging, SOURCE_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
  await fsp.rm(path.join(staging, '.pulling.json'), { force: true });
  const previousDirKeptAt = await swapIn(staging, targetDir);
  return { listing, targetDir, downloadedBytes, totalBytes, upToDate: false, previousDirKeptAt };
}

/** Replaces targetDir by staging; an old model we pulled is deleted, anything else is kept under a new name. */
async function swapIn(staging: string, targetDir: string): Promise<string | null> {
  let keptAt: string | null = null;
  if (fs.existsSync(targetDir)) {
    const ours = fs.existsSync(path.join(targetDir, SOURCE_FILE));
    const aside = ours ? `${targetDir}.old` : `${targetDir}.previous-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    await fsp.rm(`${targetDir}.old`, { recursive: true, force: true });
    await fsp.rename(targetDir, aside);
    if (ours) await fsp.rm(aside, { recursive: true, force: true });
    else keptAt = aside;
  }
  await fsp.mkdir(path.dirname(targetDir), { recursive: true });
  await fsp.rename(staging, targetDir);
  return keptAt;
}

async function isSameModel(dir: string, listing: RepoListing): Promise<boolean> {
  const manifest = await readManifest(path.join(dir, SOURCE_FILE));
  if (!manifest || manifest.repo !== listing.repo || manifest.commit !== listing.commit) return false;
  for (const file of listing.files) {
    const stat = await fsp.stat(path.join(dir, file.path)).catch(() => null);
    if (!stat || stat.size !== file.size) return false;
  }
  return true;
}

async function readManifest(file: string): Promise<SourceManifest | null> {
  try {
    return JSON.parse(await fsp.readFile(file, 'utf8')) as SourceManifest;
  } catch {
    return null;
  }
}

/**
 * One file of a repository (a GGUF model, say) into `targetPath`, resumable
 * through `<targetPath>.partial` and checked against the size and hash the Hub
 * lists. A file already there that matches is left alone. Throws DownloadError.
 */
async function pullFile(
  options: Omit<PullOptions, 'targetDir'> & { file: string; targetPath: string },
): Promise<{ listing: RepoListing; downloadedBytes: number }> {
  const { listing } = await listFiles(options, (paths) => paths.filter((candidate) => candidate === options.file));
  const file = listing.files[0];
  if (!file) throw new DownloadError(`${options.repo} at "${listing.revision}" has no file ${options.file}`);
  const endpoint = (options.endpoint ?? 'https://huggingface.co').replace(/\/+$/, '');
  options.progress?.onListing?.(listing, file.size);
  const downloadedBytes = await downloadFile(resolveUrl(endpoint, listing, file), path.resolve(options.targetPath), file, { ...options, targetDir: '' });
  return { listing, downloadedBytes };
}

function resolveUrl(endpoint: string, listing: RepoListing, file: HubFile): string {
  return `${endpoint}/${listing.repo}/resolve/${encodeURIComponent(listing.commit)}/${file.path.split('/').map(encodeURIComponent).join('/')}`;
}

/** Fetches one file into `<dest>.partial`, resuming, then verifies and renames it. Returns the bytes transferred. */
async function downloadFile(url: string, dest: string, file: HubFile, options: PullOptions): Promise<number> {
  const partial = `${dest}.partial`;
  await fsp.mkdir(path.dirname(dest), { recursive: true });
  const existing = await fsp.stat(dest).catch(() => null);
  if (existing && existing.size === file.size && (await verify(dest, file)) === null) {
    options.progress?.onFileStart?.(file, file.size);
    options.progress?.onBytes?.(file.size);
    options.progress?.onFileDone?.(file);
    return 0;
  }
  const retries = options.retries ?? 5;
  let transferred = 0;
  let announced = false;
  for (let attempt = 0; ; attempt++) {
    let have = (await fsp.stat(partial).catch(() => null))?.size ?? 0;
    if (have > file.size) {
      await fsp.rm(partial, { force: true });
      have = 0;
    }
    if (!announced) {
      options.progress?.onFileStart?.(file, have);
      if (have > 0) options.progress?.onBytes?.(have);
      announced = true;
    }
    try {
      if (have < file.size) transferred += await fetchInto(url, partial, have, file, options);
      break;
    } catch (error) {
      options.signal?.throwIfAborted();
      if (error instanceof DownloadError || attempt >= retries)
        throw error instanceof DownloadError ? error : new DownloadError(`downloading ${file.path} failed: ${(error as Error).message}`, { cause: error });
      options.progress?.onRetry?.(file, attempt + 1, (error as Error).message);
      await sleep((options.retryDelayMs ?? 1000) * 2 ** attempt, options.signal);
    }
  }
  const problem = await verify(partial, file);
  if (problem) {
    await fsp.rm(partial, { force: true });
    throw new DownloadError(`${file.path} ${problem}; the damaged download was removed, run the pull again`);
  }
  await fsp.rename(partial, dest);
  options.progress?.onFileDone?.(file);
  return transferred;
}

/**
 * fetch for file transfers, through an undici Agent whose own header and body timeouts are off:
 * fetchInto's watchdog (stallTimeoutMs, the wait for the headers included) is the one limit.
 * Node's fetch would end a transfer after undici's 300 s without headers or between chunks,
 * whatever DOWNLOAD_STALL_TIMEOUT_MS says. The listing keeps Node's fetch: it has no watchdog,
 * and a small JSON answer needs no more than those 300 s.
 */
const transferFetch = ((input: string, init: RequestInit) =>
  undiciFetch(input, { ...(init as Parameters<typeof undiciFetch>[1]), dispatcher: modelServerAgent(0) })) as unknown as typeof fetch;

async function fetchInto(url: string, partial: string, have: number, file: HubFile, options: PullOptions): Promise<number> {
  const headers: Record<string, string> = { ...authHeaders(options.token) };
  if (have > 0) headers.range = `bytes=${have}-`;
  const stallMs = options.stallTimeoutMs ?? DOWNLOAD_STALL_TIMEOUT_MS;
  const stalled = new AbortController();
  let watchdog: NodeJS.Timeout | undefined;
  const rearm = () => {
    clearTimeout(watchdog);
    watchdog = setTimeout(() => stalled.abort(new Error(`no data for ${stallMs / 1000} s after ${have + written} bytes`)), stallMs);
  };
  const signal = options.signal ? AbortSignal.any([options.signal, stalled.signal]) : stalled.signal;
  let written = 0;
  rearm();
  try {
    return await transferInto(url, partial, have, file, options, {
      headers,
      signal,
      onChunk: (count) => {
        written += count;
        rearm();
      },
    });
  } catch (error) {
    // A stall is a network failure like a cut connection: the caller retries from the .partial.
    if (stalled.signal.aborted && !options.signal?.aborted) throw stalled.signal.reason;
    throw error;
  } finally {
    clearTimeout(watchdog);
  }
}

async function transferInto(
  url: string,
  partial: string,
  have: number,
  file: HubFile,
  options: PullOptions,
  request: { headers: Record<string, string>; signal: AbortSignal; onChunk(count: number): void },
): Promise<number> {
  const { headers, signal } = request;
  const response = await (options.fetch ?? transferFetch)(url, { headers, redirect: 'follow', signal });
  if (response.status === 401 || response.status === 403) {
    throw new DownloadError(`download of ${file.path} was refused (HTTP ${response.status}): the repository is gated or private; set HF_TOKEN`);
  }
  if (response.status === 416) {
    // The server says our partial already covers the file (or is wrong); start over.
    await fsp.rm(partial, { force: true });
    throw new Error('range not satisfiable; restarting the file');
  }
  if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
  let append = have > 0;
  if (have > 0 && response.status !== 206) {
    // The server ignored the Range header: take the whole file again.
    append = false;
  }
  const out = fs.createWriteStream(partial, { flags: append ? 'a' : 'w' });
  let written = 0;
  try {
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      if (!out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
      written += chunk.length;
      request.onChunk(chunk.length);
      options.progress?.onBytes?.(chunk.length);
    }
  } finally {
    await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
  }
  const size = (await fsp.stat(partial)).size;
  if (size < file.size) throw new Error(`connection closed after ${size} of ${file.size} bytes`);
  return written;
}

/** Null when the file matches what the Hub listed; else what is wrong. */
async function verify(file: string, expected: HubFile): Promise<string | null> {
  const size = (await fsp.stat(file)).size;
  if (size !== expected.size) return `has ${size} bytes; the Hub lists ${expected.size}`;
  if (expected.sha256) {
    const actual = await hashFile(file, createHash('sha256'));
    return actual === expected.sha256 ? null : `failed its checksum (sha256 ${actual}, expected ${expected.sha256})`;
  }
  if (expected.blobId) {
    // git's blob id: sha1 over "blob <size>\0" and the content.
    const hash = createHash('sha1').update(`blob ${size}\0`);
    const actual = await hashFile(file, hash);
    return actual === expected.blobId ? null : `failed its checksum (git blob ${actual}, expected ${expected.blobId})`;
  }
  return null;
}

async function hashFile(file: string, hash: Hash): Promise<string> {
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 4 * 1024 * 1024 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function authHeaders(token: string | undefined): Record<string, string> {
  return token ? { authorization: `Bearer ${token}` } : {};
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', stop);
      resolve();
    }, ms);
    const stop = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', stop, { once: true });
  });
}

/** Bytes done and total of one download, from PullProgress's callbacks. */
function counting(options: TransferOptions): PullProgress {
  let total: number | null = null;
  let done = 0;
  return {
    onListing(_listing, totalBytes) {
      total = totalBytes;
      options.onProgress(done, total);
    },
    onBytes(count) {
      done += count;
      options.onProgress(done, total);
    },
    onRetry(file, attempt, reason) {
      options.onRetry?.(`${file.path}: ${reason}; try ${attempt + 1} resumes where it stopped`);
    },
  };
}

/** The HubDownloads port on the Hugging Face Hub (HF_ENDPOINT, HF_TOKEN; stallTimeoutMs: DOWNLOAD_STALL_TIMEOUT_MS). */
export class HuggingFaceHub implements HubDownloads {
  constructor(private readonly settings: { endpoint: string; token: string | undefined; stallTimeoutMs?: number }) {}

  async pullPictureModel(source: HubRepoSource, targetDir: string, options: TransferOptions): Promise<void> {
    await pullModel({ ...source, ...this.settings, targetDir, signal: options.signal, progress: counting(options) });
  }

  async pullFile(source: HubFileSource, targetPath: string, options: TransferOptions): Promise<void> {
    await pullFile({ ...source, ...this.settings, targetPath, signal: options.signal, progress: counting(options) });
  }
}
