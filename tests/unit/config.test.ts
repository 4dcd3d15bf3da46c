import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, defaultEmbeddedModelFile, loadConfig, loadDownloadConfig } from '../../src/config.js';

function configError(environment: Record<string, string>): ConfigError {
  try {
    loadConfig(environment);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(environment)}`);
}

describe('loadConfig', () => {
  it('uses the documented defaults for an empty environment', () => {
    const config = loadConfig({});
    const dataDir = path.resolve('./data');
    expect(config.port).toBe(4000);
    // No keys: only this machine can reach it.
    expect(config.host).toBe('127.0.0.1');
    expect(config.auth).toEqual({ mode: 'none', mediaUrlSecret: undefined, mediaUrlTtlSeconds: 86_400 });
    expect(config.limits).toEqual({
      maxActiveGenerationsPerOwner: 5,
      maxSubscriptionsPerConnection: 20,
      maxSubscriptionsPerClient: 100,
      requestsPerMinute: 600,
    });
    expect(config.allowedOrigins).toEqual([]);
    expect(config.graphqlIntrospection).toBe(true);
    expect(config.env).toBe('development');
    expect(config.logLevel).toBe('info');
    expect(config.dataDir).toBe(dataDir);
    expect(config.database).toEqual({ kind: 'embedded', dataDir: path.join(dataDir, 'pglite') });
    expect(config.mediaDir).toBe(path.join(dataDir, 'media'));
    expect(config.images.backend).toBe('none');
    expect(config.images.automatic1111Url).toBeUndefined();
    expect(config.images.width).toBe(512);
    expect(config.images.height).toBe(512);
    expect(config.ollama.baseUrl).toBe('http://127.0.0.1:11434');
    expect(config.ollama.model).toBe('llama3.2');
    expect(config.generation.concurrency).toBe(2);
    expect(config.publicBaseUrl).toBeUndefined();
    expect(config.graphqlLandingPage).toBe(true);
  });

  it('listens on every interface by default only with API keys, and HOST still wins', () => {
    expect(loadConfig({ AUTH_MODE: 'api-key' }).host).toBe('0.0.0.0');
    expect(loadConfig({ HOST: '0.0.0.0' }).host).toBe('0.0.0.0');
  });

  it('turns introspection off in production unless switched on', () => {
    expect(loadConfig({ NODE_ENV: 'production' }).graphqlIntrospection).toBe(false);
    expect(loadConfig({ NODE_ENV: 'production', GRAPHQL_INTROSPECTION: 'true' }).graphqlIntrospection).toBe(true);
  });

  it('reads ALLOWED_ORIGINS as a list of origins, or * on purpose', () => {
    expect(loadConfig({ ALLOWED_ORIGINS: 'https://a.example, http://b.example:8080' }).allowedOrigins).toEqual(['https://a.example', 'http://b.example:8080']);
    expect(loadConfig({ ALLOWED_ORIGINS: '*' }).allowedOrigins).toBe('*');
    expect(configError({ ALLOWED_ORIGINS: 'https://a.example/page' }).message).toContain('https://a.example/page is not an origin');
  });

  it('resolves the data, database and media directories to absolute paths', () => {
    const config = loadConfig({ DATA_DIR: 'relative/dir' });
    expect(path.isAbsolute(config.dataDir)).toBe(true);
    expect(config.dataDir).toBe(path.resolve('relative/dir'));
    expect(config.database).toEqual({ kind: 'embedded', dataDir: path.resolve('relative/dir/pglite') });
    expect(config.mediaDir).toBe(path.resolve('relative/dir/media'));
  });

  it('puts the media directory under DATA_DIR unless MEDIA_DIR is set', () => {
    expect(loadConfig({ DATA_DIR: '/srv/story' }).mediaDir).toBe(path.resolve('/srv/story/media'));
    expect(loadConfig({ DATA_DIR: '/srv/story', MEDIA_DIR: '/mnt/pictures' }).mediaDir).toBe(path.resolve('/mnt/pictures'));
  });

  it('selects postgres when DATABASE_URL is set', () => {
    const config = loadConfig({ DATABASE_URL: 'postgres://user:pw@db:5432/stories' });
    expect(config.database).toEqual({ kind: 'postgres', url: 'postgres://user:pw@db:5432/stories', poolSize: 10 });
  });

  it('rejects a DATABASE_URL that is not postgres, naming the variable', () => {
    expect(configError({ DATABASE_URL: 'mysql://db/stories' }).message).toContain('DATABASE_URL');
  });

  it('prints PDF books on A5 unless EXPORT_PDF_PAGE_SIZE=LETTER, and refuses another size, naming the variable', () => {
    expect(loadConfig({}).export.pdfPageSize).toBe('A5');
    expect(loadConfig({ EXPORT_PDF_PAGE_SIZE: 'LETTER' }).export.pdfPageSize).toBe('LETTER');
    expect(configError({ EXPORT_PDF_PAGE_SIZE: 'A4' }).message).toBe(
      'Invalid configuration:\n  EXPORT_PDF_PAGE_SIZE: Invalid option: expected one of "A5"|"LETTER"',
    );
  });

  it('keeps 64 MiB of rendered book files (EXPORT_CACHE_MB, 0 keeps none) and renders one book at a time (EXPORT_THREADS)', () => {
    expect(loadConfig({}).export).toMatchObject({ cacheBytes: 64 * 2 ** 20, threads: 1 });
    expect(loadConfig({ EXPORT_CACHE_MB: '0', EXPORT_THREADS: '3' }).export).toMatchObject({ cacheBytes: 0, threads: 3 });
    expect(configError({ EXPORT_CACHE_MB: '-1' }).message).toContain('EXPORT_CACHE_MB');
    expect(configError({ EXPORT_CACHE_MB: 'lots' }).message).toContain('EXPORT_CACHE_MB');
    expect(configError({ EXPORT_THREADS: '0' }).message).toContain('EXPORT_THREADS');
  });

  it('selects automatic1111 when only AUTOMATIC1111_URL is set', () => {
    const config = loadConfig({ AUTOMATIC1111_URL: 'http://gpu:7860' });
    expect(config.images.backend).toBe('automatic1111');
    expect(config.images.automatic1111Url).toBe('http://gpu:7860');
  });

  it('keeps images off when IMAGE_BACKEND=none even if AUTOMATIC1111_URL is set', () => {
    expect(loadConfig({ IMAGE_BACKEND: 'none', AUTOMATIC1111_URL: 'http://gpu:7860' }).images.backend).toBe('none');
    expect(loadConfig({ IMAGE_BACKEND: 'none' }).images.chosenByDefault).toBe(false);
    // Off only because nothing was found: a picture model downloaded later turns pictures on.
    expect(loadConfig({ DATA_DIR: '/nonexistent' }).images).toMatchObject({ backend: 'none', chosenByDefault: true });
  });

  it('rejects IMAGE_BACKEND=automatic1111 without a URL, naming AUTOMATIC1111_URL', () => {
    const error = configError({ IMAGE_BACKEND: 'automatic1111' });
    expect(error.message).toContain('AUTOMATIC1111_URL');
  });

  it.each([
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['IMAGE_WIDTH', '100'],
    ['IMAGE_HEIGHT', '100'],
    ['OLLAMA_BASE_URL', 'ftp://x'],
    ['OLLAMA_BASE_URL', 'not a url'],
    ['AUTOMATIC1111_URL', 'ftp://gpu'],
    ['GENERATION_CONCURRENCY', '0'],
    ['LOG_LEVEL', 'loud'],
    ['GRAPHQL_LANDING_PAGE', 'maybe'],
    // Longer than Node's timers keep (2^31 − 1 ms): such a timer would fire after 1 ms, over and over.
    ['DRAFT_SWEEP_INTERVAL_MS', '2147483648'],
    ['DOWNLOAD_STALL_TIMEOUT_MS', '9999999999'],
    ['SESSION_HEARTBEAT_MS', '2147483648'],
    // The migration and media-sweep locks hold one connection while their queries need another.
    ['DATABASE_POOL_SIZE', '1'],
  ])('rejects %s=%s with a ConfigError that names the variable', (name, value) => {
    expect(configError({ [name]: value }).message).toContain(name);
  });

  it('lists every bad variable in one error', () => {
    const message = configError({ PORT: 'abc', IMAGE_WIDTH: '100', OLLAMA_BASE_URL: 'ftp://x' }).message;
    expect(message).toContain('PORT');
    expect(message).toContain('IMAGE_WIDTH');
    expect(message).toContain('OLLAMA_BASE_URL');
  });

  it('accepts image sizes that are multiples of 8', () => {
    const config = loadConfig({ IMAGE_WIDTH: '768', IMAGE_HEIGHT: '1024' });
    expect(config.images.width).toBe(768);
    expect(config.images.height).toBe(1024);
  });

  it('treats empty-string variables as unset', () => {
    const config = loadConfig({
      PORT: '',
      DATABASE_URL: '',
      AUTOMATIC1111_URL: '',
      IMAGE_BACKEND: '',
      OLLAMA_BASE_URL: '',
      OLLAMA_MODEL: '',
      MEDIA_DIR: '',
    });
    expect(config.port).toBe(4000);
    expect(config.database.kind).toBe('embedded');
    expect(config.images.backend).toBe('none');
    expect(config.ollama.baseUrl).toBe('http://127.0.0.1:11434');
    expect(config.ollama.model).toBe('llama3.2');
    expect(config.mediaDir).toBe(path.join(config.dataDir, 'media'));
  });

  it('strips trailing slashes from URLs', () => {
    const config = loadConfig({
      OLLAMA_BASE_URL: 'http://ollama:11434/',
      AUTOMATIC1111_URL: 'https://gpu.example/sd//',
      PUBLIC_BASE_URL: 'https://stories.example/',
    });
    expect(config.ollama.baseUrl).toBe('http://ollama:11434');
    expect(config.images.automatic1111Url).toBe('https://gpu.example/sd');
    expect(config.publicBaseUrl).toBe('https://stories.example');
  });

  it('reads numbers and booleans from their string forms', () => {
    const config = loadConfig({ PORT: '8080', GENERATION_CONCURRENCY: '5', GRAPHQL_LANDING_PAGE: 'no', OLLAMA_TEMPERATURE: '0.3' });
    expect(config.port).toBe(8080);
    expect(config.generation.concurrency).toBe(5);
    expect(config.graphqlLandingPage).toBe(false);
    expect(config.ollama.temperature).toBe(0.3);
  });

  it('turns the landing page off by default in production', () => {
    expect(loadConfig({ NODE_ENV: 'production' }).graphqlLandingPage).toBe(false);
  });
});

describe('blank variables', () => {
  it('treats a variable of only spaces as unset, so PORT="  " is the default port, not 0', () => {
    expect(loadConfig({ PORT: '  ' }).port).toBe(4000);
  });
});

describe('text backend', () => {
  it('reads the Hugging Face endpoint and token the server downloads with', () => {
    expect(loadConfig({}).huggingFace).toEqual({ endpoint: 'https://huggingface.co', token: undefined });
    expect(loadConfig({ HF_ENDPOINT: 'https://hf-mirror.example/', HUGGING_FACE_HUB_TOKEN: 'hf_x' }).huggingFace).toEqual({
      endpoint: 'https://hf-mirror.example',
      token: 'hf_x',
    });
    expect(() => loadConfig({ HF_ENDPOINT: 'ftp://mirror' })).toThrow(/HF_ENDPOINT/);
  });

  it('gives set-up downloads a minute without progress before a transfer is abandoned and resumed, or DOWNLOAD_STALL_TIMEOUT_MS', () => {
    expect(loadConfig({}).downloads).toEqual({ stallTimeoutMs: 60_000 });
    expect(loadConfig({ DOWNLOAD_STALL_TIMEOUT_MS: '180000' }).downloads.stallTimeoutMs).toBe(180_000);
    expect(configError({ DOWNLOAD_STALL_TIMEOUT_MS: '50' }).message).toContain('DOWNLOAD_STALL_TIMEOUT_MS');
  });

  it('gives a model download (npm run models:pull --dir) its own settings, validated the same way, whatever the rest of the configuration says', () => {
    const download = loadDownloadConfig({
      DOWNLOAD_STALL_TIMEOUT_MS: '400000',
      HF_ENDPOINT: 'http://mirror.local/',
      HUGGING_FACE_HUB_TOKEN: 'hf_x',
      PORT: 'not a port',
    });
    expect(download).toEqual({ huggingFace: { endpoint: 'http://mirror.local', token: 'hf_x' }, downloads: { stallTimeoutMs: 400_000 } });
    expect(loadDownloadConfig({})).toEqual({ huggingFace: { endpoint: 'https://huggingface.co', token: undefined }, downloads: { stallTimeoutMs: 60_000 } });
    expect(() => loadDownloadConfig({ DOWNLOAD_STALL_TIMEOUT_MS: '50' })).toThrow(/DOWNLOAD_STALL_TIMEOUT_MS/);
  });

  it('leaves the backend to each generation when TEXT_BACKEND is unset (Ollama if it answers, looked at every 5 s, else embedded), with a stall limit of a minute', () => {
    expect(loadConfig({}).text).toEqual({ backend: null, ollamaRecheckMs: 5000, stallTimeoutMs: 60_000 });
    expect(loadConfig({ OLLAMA_RECHECK_MS: '0' }).text.ollamaRecheckMs).toBe(0);
    expect(configError({ OLLAMA_RECHECK_MS: '-1' }).message).toContain('OLLAMA_RECHECK_MS');
    expect(loadConfig({ TEXT_BACKEND: 'embedded' }).text.backend).toBe('embedded');
    expect(loadConfig({}).openai).toBeNull();
  });

  it('looks for the embedded model under DATA_DIR/models/text by default, with 4096 tokens of context and the physical cores', () => {
    const config = loadConfig({ DATA_DIR: '/srv/story' });
    expect(config.embedded).toEqual({
      modelFile: '/srv/story/models/text/qwen2.5-1.5b-instruct-q4_k_m.gguf',
      threads: undefined,
      contextSize: 4096,
      gpu: 'auto',
      temperature: 0.8,
      requestTimeoutMs: 300_000,
      seed: undefined,
    });
    expect(defaultEmbeddedModelFile('/srv/story')).toBe(config.embedded.modelFile);
    expect(loadConfig({ EMBEDDED_MODEL_FILE: 'models/mine.gguf', EMBEDDED_THREADS: '6' }).embedded).toMatchObject({
      modelFile: path.resolve('models/mine.gguf'),
      threads: 6,
    });
  });

  it('refuses an unknown TEXT_BACKEND and embedded settings out of range, naming the variable', () => {
    expect(configError({ TEXT_BACKEND: 'llamafile' }).message).toContain('TEXT_BACKEND');
    expect(configError({ EMBEDDED_THREADS: '0' }).message).toContain('EMBEDDED_THREADS');
    expect(configError({ EMBEDDED_CONTEXT_SIZE: '100' }).message).toContain('EMBEDDED_CONTEXT_SIZE');
    expect(configError({ EMBEDDED_GPU: 'rocm' }).message).toContain('EMBEDDED_GPU');
  });

  it('reads the OpenAI-compatible server settings, trimming a trailing slash', () => {
    const config = loadConfig({ TEXT_BACKEND: 'openai', OPENAI_BASE_URL: 'http://127.0.0.1:8080/v1/', OPENAI_MODEL: 'qwen2.5-7b', OPENAI_API_KEY: 'sk-1' });
    expect(config.openai).toEqual({ baseUrl: 'http://127.0.0.1:8080/v1', apiKey: 'sk-1', model: 'qwen2.5-7b', temperature: 0.8, requestTimeoutMs: 300_000 });
  });

  it('refuses TEXT_BACKEND=openai without a base URL and model, naming both', () => {
    expect(configError({ TEXT_BACKEND: 'openai' }).message).toContain('OPENAI_BASE_URL and OPENAI_MODEL: required when TEXT_BACKEND=openai');
  });
});

describe('harmonising pass', () => {
  it('defaults to a light image-to-image strength of 0.3, and 0 turns it off', () => {
    expect(loadConfig({}).images.harmonizeStrength).toBe(0.3);
    expect(loadConfig({ HARMONIZE_STRENGTH: '0' }).images.harmonizeStrength).toBe(0);
  });

  it('refuses a strength outside 0..1, naming the variable', () => {
    expect(configError({ HARMONIZE_STRENGTH: '1.5' }).message).toContain('HARMONIZE_STRENGTH');
  });
});

describe('public URLs', () => {
  it('are absolute by default, trust no proxy, and can be made relative', () => {
    expect(loadConfig({})).toMatchObject({ publicBaseUrl: undefined, publicUrls: 'absolute', trustProxy: false });
    expect(loadConfig({ PUBLIC_URLS: 'relative' }).publicUrls).toBe('relative');
    expect(configError({ PUBLIC_URLS: 'sometimes' }).message).toContain('PUBLIC_URLS');
  });

  it('take PUBLIC_BASE_URL without its trailing slash, with a path, and refuse a query or another scheme', () => {
    expect(loadConfig({ PUBLIC_BASE_URL: 'https://example.org/stories/' }).publicBaseUrl).toBe('https://example.org/stories');
    expect(configError({ PUBLIC_BASE_URL: 'https://example.org/?a=1' }).message).toContain('PUBLIC_BASE_URL');
    expect(configError({ PUBLIC_BASE_URL: 'ftp://example.org' }).message).toContain('PUBLIC_BASE_URL');
  });

  it("read TRUST_PROXY as Express's trust proxy: a switch, a hop count or addresses", () => {
    expect(loadConfig({ TRUST_PROXY: 'true' }).trustProxy).toBe(true);
    expect(loadConfig({ TRUST_PROXY: '2' }).trustProxy).toBe(2);
    expect(loadConfig({ TRUST_PROXY: 'loopback, 10.0.0.0/8,::1' }).trustProxy).toEqual(['loopback', '10.0.0.0/8', '::1']);
    expect(configError({ TRUST_PROXY: 'my-proxy' }).message).toContain('TRUST_PROXY');
    expect(configError({ TRUST_PROXY: '10.0.0.0/8/8' }).message).toContain('TRUST_PROXY');
  });
});
