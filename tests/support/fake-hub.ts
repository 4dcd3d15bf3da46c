import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

/**
 * A fake Hugging Face Hub on loopback (HF_ENDPOINT), speaking the real protocol:
 * `GET /api/models/<repo>/revision/<rev>?blobs=true` lists siblings with size, git blob id
 * and, for LFS files, `lfs.sha256`; `GET /<repo>/resolve/<commit>/<path>` serves small files
 * and redirects LFS ones to a "CDN", which honours `Range: bytes=N-` with 206. Faults on
 * demand: a connection cut after N bytes (once), a body that stops after N bytes with the
 * connection left open, as a stalled CDN does (once), response headers sent only after a
 * while, as a CDN slow to start a transfer (once), a corrupted body (the listed hash stays
 * the true one), a token requirement, and a pause that holds every file body half-way until
 * released (so a test can act while a download is running).
 */
export interface HubFileSpec {
  content: Buffer;
  lfs: boolean;
}

export interface FakeHub {
  url: string;
  /** Repository id → its files. */
  repos: Map<string, Map<string, HubFileSpec>>;
  /** The commit every repository's `main` resolves to. */
  commit: string;
  requests: { url: string; range?: string; authorization?: string }[];
  /** Path → bytes after which the connection is cut (once). */
  dropAfter: Map<string, number>;
  /** Path → bytes after which the body stops with the connection left open (once). */
  stallAfter: Map<string, number>;
  /** Path → ms the response waits before its headers (once). */
  lateHeaders: Map<string, number>;
  /** Paths served with a flipped byte (their listed sha256 stays the true one). */
  corrupt: Set<string>;
  requireToken: string | null;
  /**
   * Holds every file body after its first half until the returned function is called;
   * `reached` resolves once a body is being held.
   */
  pause(): { release(): void; reached: Promise<void> };
  close(): Promise<void>;
}

export const HUB_COMMIT = 'c0ffee0000000000000000000000000000000001';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const gitBlobId = (data: Buffer) => createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex');

export async function startFakeHub(repos: Map<string, Map<string, HubFileSpec>>): Promise<FakeHub> {
  let hold: { released: Promise<void>; reached: () => void } | null = null;
  const hub: FakeHub = {
    repos,
    commit: HUB_COMMIT,
    requests: [],
    dropAfter: new Map(),
    stallAfter: new Map(),
    lateHeaders: new Map(),
    corrupt: new Set(),
    requireToken: null,
    url: '',
    pause() {
      let release!: () => void;
      let reached!: () => void;
      const released = new Promise<void>((resolve) => {
        release = resolve;
      });
      const reachedPromise = new Promise<void>((resolve) => {
        reached = resolve;
      });
      hold = { released, reached };
      return {
        release: () => {
          hold = null;
          release();
        },
        reached: reachedPromise,
      };
    },
    close: async () => undefined,
  };
  const fileOf = (repo: string, file: string) => hub.repos.get(repo)?.get(file);

  const server = http.createServer((req, res) => {
    const url = new URL(req.url!, 'http://hub');
    hub.requests.push({ url: url.pathname + url.search, range: req.headers.range, authorization: req.headers.authorization });
    if (hub.requireToken && req.headers.authorization !== `Bearer ${hub.requireToken}` && !url.pathname.startsWith('/cdn/')) {
      res.writeHead(401, { 'content-type': 'application/json' });
      return res.end('{"error":"Access to model is restricted"}');
    }
    const api = url.pathname.match(/^\/api\/models\/([^/]+\/[^/]+)\/revision\/([^/]+)$/);
    if (api) {
      const files = hub.repos.get(api[1]);
      if (!files) return res.writeHead(404).end('{"error":"Repository not found"}');
      const siblings = [...files.entries()].map(([rfilename, { content, lfs }]) => ({
        rfilename,
        size: content.length,
        blobId: lfs
          ? createHash('sha1')
              .update(`version https://git-lfs.github.com/spec/v1\noid sha256:${sha256(content)}`)
              .digest('hex')
          : gitBlobId(content),
        ...(lfs ? { lfs: { sha256: sha256(content), size: content.length, pointerSize: 134 } } : {}),
      }));
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ id: api[1], sha: HUB_COMMIT, siblings }));
    }
    const resolve = url.pathname.match(/^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/);
    if (resolve) {
      const file = decodeURIComponent(resolve[3]);
      const spec = fileOf(resolve[1], file);
      if (!spec) return res.writeHead(404).end('Entry not found');
      // LFS content comes from elsewhere, as huggingface.co redirects it to its CDN.
      if (spec.lfs) return res.writeHead(302, { location: `/cdn/${encodeURIComponent(resolve[1])}/${encodeURIComponent(file)}` }).end();
      return void serve(file, spec, req, res);
    }
    const cdn = url.pathname.match(/^\/cdn\/([^/]+)\/(.+)$/);
    if (cdn) {
      const file = decodeURIComponent(cdn[2]);
      const spec = fileOf(decodeURIComponent(cdn[1]), file);
      if (!spec) return res.writeHead(404).end();
      return void serve(file, spec, req, res);
    }
    res.writeHead(404).end();
  });

  async function serve(file: string, spec: HubFileSpec, req: http.IncomingMessage, res: http.ServerResponse) {
    let body = spec.content;
    if (hub.corrupt.has(file)) {
      body = Buffer.from(body);
      body[body.length >> 1] ^= 0xff;
    }
    const late = hub.lateHeaders.get(file);
    if (late !== undefined) {
      hub.lateHeaders.delete(file);
      await new Promise((resolve) => setTimeout(resolve, late));
      if (res.destroyed) return;
    }
    const range = req.headers.range?.match(/^bytes=(\d+)-$/);
    let start = 0;
    if (range) {
      start = Number(range[1]);
      if (start >= body.length) return res.writeHead(416).end();
      res.writeHead(206, { 'content-length': body.length - start, 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` });
    } else {
      res.writeHead(200, { 'content-length': body.length });
    }
    const cut = hub.dropAfter.get(file);
    if (cut !== undefined && cut > start) {
      hub.dropAfter.delete(file);
      res.write(body.subarray(start, cut), () => res.socket?.destroy());
      return;
    }
    const stall = hub.stallAfter.get(file);
    if (stall !== undefined && stall > start) {
      hub.stallAfter.delete(file);
      res.write(body.subarray(start, stall));
      return;
    }
    const paused = hold;
    if (paused && body.length - start > 1) {
      const half = start + Math.floor((body.length - start) / 2);
      res.write(body.subarray(start, half));
      paused.reached();
      await paused.released;
      if (res.destroyed) return;
      start = half;
    }
    res.end(body.subarray(start));
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  hub.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  hub.close = () =>
    new Promise<void>((resolve) => {
      hold = null;
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return hub;
}

/** A folder's files as a repository serves them: ONNX graphs and their external weights in LFS, the rest as plain git files. */
export async function repoFilesOf(dir: string): Promise<Map<string, HubFileSpec>> {
  const files = new Map<string, HubFileSpec>();
  const walk = async (folder: string) => {
    for (const entry of await fs.readdir(folder, { withFileTypes: true })) {
      const full = path.join(folder, entry.name);
      if (entry.isDirectory()) await walk(full);
      else {
        const relative = path.relative(dir, full).split(path.sep).join('/');
        files.set(relative, { content: await fs.readFile(full), lfs: /\.onnx(_data)?$/.test(relative) });
      }
    }
  };
  await walk(dir);
  return files;
}
