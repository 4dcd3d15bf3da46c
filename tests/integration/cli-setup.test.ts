import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StartModelDownloadDocument } from '../../src/client/generated/graphql.js';
import { OnnxRuntimeHost } from '../../src/adapters/images/onnx-image-generator.js';
import { buildTinySdModel, type TinyModel } from '../../packages/onnx-diffusion/tests/support/tiny-sd-model.js';
import { repoFilesOf, startFakeHub, type FakeHub } from '../support/fake-hub.js';
import { startFakeOllama, type FakeOllama } from '../support/fake-ollama.js';
import { runStoryAgent } from '../support/story-agent-cli.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { buildTinyGgufModel, type TinyGgufModel } from '../support/tiny-gguf-model.js';

/**
 * `story-agent status` and `story-agent setup` as a user runs them (compiled, a child process without a
 * terminal) against a bare server: a fake Ollama without the model, a fake Hub with a tiny picture model.
 */
const PICTURE_REPO = 'TheyCallMeHex/LCM-Dreamshaper-V7-ONNX';

let ollama: FakeOllama;
let hub: FakeHub;
let tiny: TinyModel;
let server: TestServer;

beforeAll(async () => {
  tiny = await buildTinySdModel({ externalData: true, name: PICTURE_REPO });
  hub = await startFakeHub(new Map([[PICTURE_REPO, await repoFilesOf(tiny.dir)]]));
  ollama = await startFakeOllama({ modelInstalled: false });
  server = await startTestServer({ env: { OLLAMA_BASE_URL: ollama.url, HF_ENDPOINT: hub.url, ORT_EXECUTION_PROVIDERS: 'cpu' } });
});

afterAll(async () => {
  await server?.stop();
  await OnnxRuntimeHost.releaseAll();
  await ollama?.close();
  await hub?.close();
  await tiny?.remove();
});

const cli = (...args: string[]) => runStoryAgent([...args, '--url', server.url]);

describe('story-agent status and setup', () => {
  it('status lists each component with its state, what fixes it and the licence, and exits 1 while something is missing', async () => {
    const run = await cli('status');
    expect(run.code).toBe(1);
    const lines = run.stdout.split('\n');
    expect(lines[0]).toMatch(/^story model +MISSING +ollama +Ollama at http:\/\/127\.0\.0\.1:\d+ does not have the model "llama3\.2"; pull it$/);
    expect(run.stdout).toContain('fix: story-agent setup (Llama 3.2 3B Instruct (Ollama, Q4_K_M), 2.0 GB (pulled by Ollama))');
    expect(run.stdout).toContain('Licence: Llama 3.2 Community License (llama3.2), commercial use allowed');
    expect(run.stdout).toMatch(/^picture model +MISSING +onnx +No usable picture model in /m);
    expect(run.stdout).toContain('Licence: CreativeML OpenRAIL-M (creativeml-openrail-m), commercial use allowed');
    expect(run.stdout).toMatch(/^database +READY +postgresql +PostgreSQL answers$/m);
    expect(run.stdout.trimEnd().split('\n').at(-1)).toBe('Not ready: `story-agent setup` downloads what is missing, or press the buttons on the page.');

    const json = await cli('status', '--json');
    expect(json.code).toBe(1);
    const report = JSON.parse(json.stdout) as { ready: boolean; components: { component: string; state: string }[] };
    expect(report.ready).toBe(false);
    expect(report.components.map(({ component, state }) => `${component}=${state}`)).toEqual([
      'STORY_MODEL=MISSING',
      'PICTURE_MODEL=MISSING',
      'DATABASE=READY',
    ]);
  });

  it('setup without a terminal shows the licences, then refuses to download without --yes', async () => {
    const run = await cli('setup');
    expect(run.code).toBe(2);
    expect(run.stdout).toContain('  story model: Llama 3.2 3B Instruct (Ollama, Q4_K_M), 2.0 GB (pulled by Ollama)');
    expect(run.stdout).toContain('  picture model: LCM Dreamshaper v7 (ONNX, 4 steps), 4.1 GB into ');
    expect(run.stdout).toContain('    Licence: CreativeML OpenRAIL-M (creativeml-openrail-m), commercial use allowed');
    expect(run.stderr).toBe('story-agent: Not asking without a terminal: run `story-agent setup --yes` to accept the licences above and download.\n');
    expect(ollama.pulls).toEqual([]);
  });

  it('setup --yes downloads both models with a line per tenth, then status says ready', async () => {
    const run = await cli('setup', '--yes');
    expect(run.stderr).not.toContain('story-agent:');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('story model: downloaded and verified.\n');
    expect(run.stdout).toContain('picture model: downloaded and verified.\n');
    expect(run.stdout.trimEnd().split('\n').at(-1)).toBe('Ready to make books.');
    const progressLines = run.stderr.split('\n').filter((line) => line.startsWith('picture model: '));
    expect(progressLines.length).toBeGreaterThan(0);
    for (const line of progressLines) expect(line).toMatch(/^picture model: (\d+ % · )?\d+(\.\d)? (B|kB|MB)( of \d+(\.\d)? (B|kB|MB))?/);
    expect(ollama.pulls).toEqual(['llama3.2']);

    const status = await cli('status');
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/^story model +READY/m);
    expect(status.stdout).toMatch(/^picture model +READY +onnx/m);
    const again = await cli('setup');
    expect(again).toMatchObject({ code: 0, stdout: 'Everything is ready: nothing to download.\n' });
  });
});

describe('story-agent status and setup with TEXT_BACKEND unset, Ollama lacking the model and the embedded GGUF on disk', () => {
  let gguf: TinyGgufModel;
  let lacking: FakeOllama;
  let embedded: TestServer;

  beforeAll(async () => {
    gguf = await buildTinyGgufModel();
    lacking = await startFakeOllama({ modelInstalled: false });
    embedded = await startTestServer({ env: { TEXT_BACKEND: '', OLLAMA_BASE_URL: lacking.url, EMBEDDED_MODEL_FILE: gguf.file, IMAGE_BACKEND: 'none' } });
  });

  afterAll(async () => {
    await embedded?.stop();
    await lacking?.close();
    await gguf?.remove();
  });

  it('status shows the story model ready on the embedded model with the pull as optional, and setup downloads nothing', async () => {
    const run = await runStoryAgent(['status', '--url', embedded.url]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^story model +READY +embedded +Ollama at http:\/\/127\.0\.0\.1:\d+ does not have the model "llama3\.2": the embedded model /m);
    expect(run.stdout).toContain("optional: press Download on the page's set-up panel (Llama 3.2 3B Instruct (Ollama, Q4_K_M), 2.0 GB (pulled by Ollama))");
    expect(run.stdout).not.toContain('fix: story-agent setup');
    expect(run.stdout.trimEnd().split('\n').at(-1)).toBe('Ready to make books.');
    const setup = await runStoryAgent(['setup', '--yes', '--url', embedded.url]);
    expect(setup).toMatchObject({ code: 0, stdout: 'Everything is ready: nothing to download.\n' });
    expect(lacking.pulls).toEqual([]);
  });

  it('while the optional pull runs, status stays ready and shows its progress, and setup joins it to the end', async () => {
    const held = lacking.pausePulls();
    await embedded.query(StartModelDownloadDocument, { component: 'STORY_MODEL' });
    await held.reached;
    const run = await runStoryAgent(['status', '--url', embedded.url]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^story model +READY +embedded +.+\. Downloading Llama 3\.2 3B Instruct \(Ollama, Q4_K_M\)$/m);
    expect(run.stdout).toMatch(/optional, downloading: .+ \(Llama 3\.2 3B Instruct \(Ollama, Q4_K_M\), 2\.0 GB \(pulled by Ollama\)\)/);
    expect(run.stdout.trimEnd().split('\n').at(-1)).toBe('Ready to make books.');
    let listed!: () => void;
    const joining = new Promise<void>((resolve) => {
      listed = resolve;
    });
    const setup = runStoryAgent(['setup', '--yes', '--url', embedded.url], { onStdout: (soFar) => soFar.includes('To download:') && listed() });
    // Released once setup has listed what it joins, so that it saw the pull running.
    await joining;
    held.release();
    expect(await setup).toMatchObject({ code: 0 });
    expect((await setup).stdout).toContain('story model: downloaded and verified.');
    expect(lacking.pulls).toEqual(['llama3.2']);
  });
});
