import cliProgress from 'cli-progress';
import WebSocket from 'ws';
import { type SetupComponent, type SetupStatusQuery, SetupStatusDocument, StartModelDownloadDocument } from '../client/generated/graphql.js';
import type { GraphQLClient } from '../client/graphql-client.js';
import { describeTransfer, followSetupProgress, formatBytes, percentDone, type SetupProgress } from '../client/setup.js';
import { CliError, EXIT, type Io } from './commands.js';
import type { OutputStream } from './progress-display.js';
import { withoutControlSequences } from './terminal-text.js';

/**
 * `story-agent status`: what the server has ready, component by component.
 * `story-agent setup`: downloads what is missing, after showing each model's size
 * and licence and asking (`--yes` skips the question), with a progress bar on a
 * terminal and a line per tenth done otherwise.
 */

type Component = SetupStatusQuery['setupStatus']['components'][number];

const NAMES: Record<SetupComponent, string> = { STORY_MODEL: 'story model', PICTURE_MODEL: 'picture model', DATABASE: 'database' };

async function fetchStatus(client: GraphQLClient): Promise<SetupStatusQuery['setupStatus']> {
  return (await client.request(SetupStatusDocument, {})).setupStatus;
}

const clean = (text: string) => withoutControlSequences(text);

/** "Llama 3.2 3B Instruct (Ollama, Q4_K_M), 2.0 GB" and its licence, as lines. */
function actionLines(action: NonNullable<Component['action']>): string[] {
  const size = action.sizeBytes !== null ? `, ${formatBytes(action.sizeBytes)}` : ', size known once it starts';
  const lines = [`${clean(action.title)}${size}${action.destination ? ` into ${clean(action.destination)}` : ' (pulled by Ollama)'}`];
  if (action.license) {
    const terms = action.license.commercialUse ? 'commercial use allowed' : 'NON-COMMERCIAL: no commercial use';
    lines.push(`Licence: ${clean(action.license.name)} (${clean(action.license.id)}), ${terms}`);
    lines.push(`  ${clean(action.license.note)}`, `  ${clean(action.license.url)}`);
  } else {
    lines.push(`Licence: not in the catalog; read the model's page before using it (${clean(action.source)})`);
  }
  return lines;
}

/** `status`: a table of the components; exit 0 when all are ready (or off), 1 otherwise. */
export async function status(client: GraphQLClient, options: { json?: boolean }, io: Io): Promise<number> {
  const report = await fetchStatus(client);
  if (options.json) {
    io.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return report.ready ? EXIT.ok : EXIT.failed;
  }
  const width = Math.max(...report.components.map((component) => NAMES[component.component].length));
  for (const component of report.components) {
    io.stdout.write(
      `${NAMES[component.component].padEnd(width)}  ${component.state.padEnd(11)}  ${clean(component.backend).padEnd(10)}  ${clean(component.message)}\n`,
    );
    if (component.action) {
      const [what, ...license] = actionLines(component.action);
      // A ready component's action is optional (the embedded model is in use while Ollama lacks its model): `setup` leaves it be, or joins it once running.
      const how =
        component.state !== 'READY'
          ? `fix: story-agent setup (${what})`
          : component.download?.state === 'RUNNING'
            ? `optional, downloading: ${describeTransfer(component.download)} (${what})`
            : `optional: press Download on the page's set-up panel (${what})`;
      io.stdout.write(`${' '.repeat(width + 2)}${how}\n`);
      for (const line of license) io.stdout.write(`${' '.repeat(width + 7)}${line}\n`);
    }
  }
  io.stdout.write(report.ready ? 'Ready to make books.\n' : 'Not ready: `story-agent setup` downloads what is missing, or press the buttons on the page.\n');
  return report.ready ? EXIT.ok : EXIT.failed;
}

/** `setup`: shows what it will download (size, licence), asks (unless `yes`), downloads one component after another. */
export async function setup(client: GraphQLClient, options: { yes?: boolean }, io: Io): Promise<number> {
  const report = await fetchStatus(client);
  const todo = report.components.flatMap((component) =>
    // A download already running is joined and shown, the optional one of a READY component included.
    component.action && (component.state === 'MISSING' || component.state === 'DOWNLOADING' || component.download?.state === 'RUNNING')
      ? [{ ...component, action: component.action }]
      : [],
  );
  const stuck = report.components.filter((component) => component.state === 'UNREACHABLE');
  for (const component of stuck) io.stderr.write(`${NAMES[component.component]}: ${clean(component.message)}\n`);
  if (todo.length === 0) {
    io.stdout.write(stuck.length === 0 ? 'Everything is ready: nothing to download.\n' : 'Nothing to download; start what is named above.\n');
    return stuck.length === 0 ? EXIT.ok : EXIT.failed;
  }
  io.stdout.write('To download:\n');
  for (const component of todo) {
    const [what, ...license] = actionLines(component.action);
    io.stdout.write(`  ${NAMES[component.component]}: ${what}\n`);
    for (const line of license) io.stdout.write(`    ${line}\n`);
  }
  if (!options.yes) {
    if (!io.confirm)
      throw new CliError('Not asking without a terminal: run `story-agent setup --yes` to accept the licences above and download.', EXIT.badInput);
    if (!(await io.confirm('Accept these licences and download? [y/N] '))) {
      io.stdout.write('Nothing downloaded.\n');
      return EXIT.failed;
    }
  }
  let failed = stuck.length > 0;
  for (const component of todo) {
    const last = await download(client, component, io);
    if (last.state === 'COMPLETED') io.stdout.write(`${NAMES[component.component]}: downloaded and verified.\n`);
    else {
      failed = true;
      io.stderr.write(`story-agent: ${clean(last.errorMessage ?? `the ${NAMES[component.component]} download did not finish`)}\n`);
    }
  }
  if (!failed) io.stdout.write('Ready to make books.\n');
  return failed ? EXIT.failed : EXIT.ok;
}

/**
 * Starts one download, or joins the one already running, and shows it to its end. A running one is only followed,
 * not started again: it may end between the status read and this call, and a start of a component that is ready by
 * then is refused.
 */
async function download(client: GraphQLClient, component: Component, io: Io): Promise<SetupProgress> {
  const name = NAMES[component.component];
  const current =
    component.download?.state === 'RUNNING'
      ? component.download
      : (await client.request(StartModelDownloadDocument, { component: component.component })).startModelDownload;
  const display = createDownloadDisplay(io.stderr, name);
  display.update(current);
  try {
    return await followSetupProgress({
      url: client.endpoint.replace(/^http/, 'ws'),
      component: component.component,
      webSocketImpl: WebSocket,
      connectionParams: () => client.connectionParams(),
      onProgress: (progress) => display.update(progress),
    });
  } finally {
    display.finish();
  }
}

/** A cli-progress bar on a terminal; otherwise a line when it starts and at each tenth done. */
function createDownloadDisplay(stderr: OutputStream, name: string): { update(progress: SetupProgress): void; finish(): void } {
  if (stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      { stream: stderr as NodeJS.WriteStream, format: `${name} {bar} {percentage}% | {transfer}`, barsize: 30, hideCursor: true, gracefulExit: false },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    return {
      update(progress) {
        const total = progress.bytesTotal ?? 0;
        if (!started) bar.start(total, progress.bytesDone, { transfer: describeTransfer(progress) });
        started = true;
        bar.setTotal(total);
        bar.update(progress.bytesDone, { transfer: describeTransfer(progress) });
      },
      finish: () => bar.stop(),
    };
  }
  let lastTenth = -1;
  return {
    update(progress) {
      if (progress.state !== 'RUNNING') return;
      const percent = percentDone(progress);
      const tenth = percent === null ? 0 : Math.floor(percent / 10);
      if (tenth <= lastTenth) return;
      lastTenth = tenth;
      stderr.write(`${name}: ${percent === null ? '' : `${percent} % · `}${describeTransfer(progress)}\n`);
    },
    finish: () => undefined,
  };
}
