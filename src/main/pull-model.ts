import path from 'node:path';
import cliProgress from 'cli-progress';
import { Command } from 'commander';
import { type AppConfig, ConfigError, loadConfig, loadDownloadConfig } from '../config.js';
import { pullModel, type HubFile } from '../adapters/downloads/hugging-face-hub.js';
import { DownloadError } from '../ports/model-downloads.js';
import { catalogEntryFor, defaultModel, MODEL_CATALOG, ModelRole } from '../services/setup/model-catalog.js';
import { licenseLines } from '../services/setup/license-text.js';

/**
 * `npm run models:pull [-- <repo> [--revision R] [--dir D]]`: downloads a Stable
 * Diffusion ONNX export from the Hugging Face Hub into SD_MODEL_DIR. Rerunning
 * resumes an interrupted download and does nothing when the model is current.
 */
const DEFAULT = defaultModel(ModelRole.PICTURES);
const DEFAULT_REPO = DEFAULT.source.kind === 'huggingface-repo' ? DEFAULT.source.repo : '';
const offered = MODEL_CATALOG.filter((model) => model.role === ModelRole.PICTURES && model.source.kind === 'huggingface-repo');

const program = new Command()
  .name('npm run models:pull --')
  .description('Download a Stable Diffusion ONNX export (diffusers/Optimum layout) for IMAGE_BACKEND=onnx.')
  .argument('[repo]', 'Hugging Face repository id', DEFAULT_REPO)
  .option('-r, --revision <revision>', 'branch, tag or commit', 'main')
  .option('-d, --dir <dir>', 'target folder (default: SD_MODEL_DIR, i.e. $DATA_DIR/models/sd)')
  .addHelpText(
    'after',
    `
Environment: HF_TOKEN (gated or private repositories), HF_ENDPOINT (a mirror; default https://huggingface.co),
DOWNLOAD_STALL_TIMEOUT_MS (no byte for this long abandons a transfer, which resumes; default 60000),
SD_MODEL_DIR / DATA_DIR (where the model goes).

Models in the catalog (src/services/setup/model-catalog.json):
${offered
  .map(
    (model) =>
      `  npm run models:pull -- ${model.source.kind === 'huggingface-repo' ? model.source.repo : ''}`.padEnd(68) +
      `# ${model.title}; ${model.license.name}${model.default ? ' (default)' : ''}`,
  )
  .join('\n')}`,
  );

program.parse();
const [repo] = program.processedArgs as [string];
const options = program.opts<{ revision: string; dir?: string }>();

let targetDir: string;
let download: Pick<AppConfig, 'huggingFace' | 'downloads'>;
try {
  if (options.dir) {
    // Told where to put the model, the command needs only the download's own settings, not a valid server configuration.
    targetDir = path.resolve(options.dir);
    download = loadDownloadConfig();
  } else {
    const config = loadConfig();
    targetDir = config.images.sdModelDir;
    download = config;
  }
} catch (error) {
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`);
    process.exit(2);
  }
  throw error;
}

const say = (line: string) => process.stdout.write(`${line}\n`);
const interactive = Boolean(process.stdout.isTTY);
const bar = new cliProgress.SingleBar(
  {
    format: '{bar} {percentage}% | {done} of {size} | {speed} | {file}',
    hideCursor: true,
    barsize: 30,
    etaBuffer: 50,
  },
  cliProgress.Presets.shades_classic,
);

let total = 0;
let received = 0;
let startedAt = 0;
let currentFile = '';
let lastLine = 0;

function payload() {
  const seconds = (performance.now() - startedAt) / 1000;
  return { done: bytes(received), size: bytes(total), speed: seconds > 0 ? `${bytes(received / seconds)}/s` : '', file: currentFile };
}

say(`Pulling ${repo} (revision ${options.revision}) into ${targetDir}`);
for (const line of licenseLines(catalogEntryFor(repo)?.license ?? null, `https://huggingface.co/${repo}`)) say(line);
try {
  const result = await pullModel({
    repo,
    revision: options.revision,
    targetDir,
    endpoint: download.huggingFace.endpoint,
    token: download.huggingFace.token,
    stallTimeoutMs: download.downloads.stallTimeoutMs,
    progress: {
      onListing(listing, totalBytes) {
        total = totalBytes;
        startedAt = performance.now();
        say(`${listing.files.length} files, ${bytes(totalBytes)} (commit ${listing.commit.slice(0, 12)})`);
        if (interactive) bar.start(total, 0, payload());
      },
      onFileStart(file: HubFile, resumed: number) {
        currentFile = file.path;
        if (!interactive) say(`  ${file.path} (${bytes(file.size)})${resumed > 0 && resumed < file.size ? `, resuming at ${bytes(resumed)}` : ''}`);
      },
      onBytes(count: number) {
        received += count;
        if (interactive) bar.update(received, payload());
        else if (performance.now() - lastLine > 10_000) {
          lastLine = performance.now();
          say(`  … ${payload().done} of ${payload().size} (${payload().speed})`);
        }
      },
      onRetry(file: HubFile, attempt: number, reason: string) {
        const line = `  ${file.path}: ${reason}; retrying (${attempt}) from where it stopped`;
        if (interactive) bar.stop();
        say(line);
        if (interactive) bar.start(total, received, payload());
      },
    },
  }).finally(() => {
    if (interactive) bar.stop();
  });
  if (result.upToDate) {
    say(`Already up to date: ${repo} @ ${result.listing.commit.slice(0, 12)} is in ${result.targetDir}.`);
  } else {
    say(
      `Done: ${result.listing.files.length} files, ${bytes(result.totalBytes)} (${bytes(result.downloadedBytes)} downloaded), verified, in ${result.targetDir}.`,
    );
    if (result.previousDirKeptAt) say(`The folder that was there before was kept at ${result.previousDirKeptAt}.`);
  }
  say('Start the server (npm start): with a model in SD_MODEL_DIR, IMAGE_BACKEND defaults to onnx.');
} catch (error) {
  if (error instanceof DownloadError) {
    process.stderr.write(`models:pull failed: ${error.message}\n`);
    process.exit(1);
  }
  throw error;
}

function bytes(value: number): string {
  if (value < 0) return '?';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}
