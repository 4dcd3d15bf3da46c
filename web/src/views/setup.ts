import { html, nothing, render } from 'lit-html';
import { type SetupComponent, type SetupStatusQuery, SetupStatusDocument, StartModelDownloadDocument } from '../../../src/client/generated/graphql.js';
import { plainMessage } from '../../../src/client/graphql-client.js';
import { describeTransfer, followSetupProgress, formatBytes, percentDone, type SetupProgress } from '../../../src/client/setup.js';
import { client, connectionParams, wsUrl } from '../api.js';
import { byId } from '../dom.js';

/**
 * The set-up panel above the form: component by component (story model,
 * picture model, database) what is ready and what is not. Each missing piece
 * has one button, with its size and licence shown before it is pressed; a
 * download shows a progress bar with bytes, speed and time left, and when it
 * ends the panel asks the server again. All ready: one compact line.
 */

type Component = SetupStatusQuery['setupStatus']['components'][number];

const NAMES: Record<SetupComponent, string> = { STORY_MODEL: 'Story model', PICTURE_MODEL: 'Picture model', DATABASE: 'Database' };
const STATE_WORDS: Record<Component['state'], string> = {
  READY: 'Ready',
  MISSING: 'Missing',
  DOWNLOADING: 'Downloading',
  UNREACHABLE: 'Not reachable',
  OFF: 'Off',
};

let status: SetupStatusQuery['setupStatus'] | null = null;
let loadError: string | null = null;
const progress = new Map<SetupComponent, SetupProgress>();
const failures = new Map<SetupComponent, string>();
const following = new Set<SetupComponent>();

const licenseTemplate = (action: NonNullable<Component['action']>) =>
  action.license
    ? html`<p class="setup-license">
        Licence: <a href=${action.license.url} target="_blank" rel="noopener">${action.license.name}</a>
        ${action.license.commercialUse ? html`<span>(commercial use allowed)</span>` : html`<strong class="non-commercial">non-commercial use only</strong>`}.
        <span class="hint">${action.license.note}</span>
      </p>`
    : html`<p class="setup-license">Licence: not in the catalog; read the model's page before using it.</p>`;

const progressTemplate = (component: Component, current: SetupProgress) => {
  const percent = percentDone(current);
  const words = describeTransfer(current);
  return html`
    <div class="progress-row">
      <progress
        max="100"
        .value=${percent ?? nothing}
        aria-valuenow=${percent ?? nothing}
        aria-valuetext=${words}
        aria-label=${`${NAMES[component.component]} download`}
      ></progress>
      <span class="setup-percent">${percent === null ? '' : `${percent} %`}</span>
    </div>
    <p class="hint setup-transfer">${words}</p>
  `;
};

const componentTemplate = (component: Component) => {
  const current = progress.get(component.component);
  const running = current?.state === 'RUNNING' || component.download?.state === 'RUNNING';
  const failure = failures.get(component.component);
  const action = component.action;
  return html`
    <li class="setup-item" data-component=${component.component} data-state=${component.state}>
      <p class="setup-line">
        <strong>${NAMES[component.component]}</strong>
        <span class=${`setup-state state-${component.state.toLowerCase()}`}>${STATE_WORDS[component.state]}</span>
        <span class="setup-message">${component.message}</span>
      </p>
      ${
        action
          ? html`
              <div class="setup-action">
                <p>
                  ${action.title}${action.sizeBytes !== null ? html`, <span class="setup-size">${formatBytes(action.sizeBytes)}</span>` : nothing}${action.destination ? html` into <code>${action.destination}</code>` : nothing}
                </p>
                ${licenseTemplate(action)}
                ${
                  running && current
                    ? progressTemplate(component, current)
                    : html`<button type="button" class="primary" @click=${() => startDownload(component.component)}>
                        Download${action.sizeBytes !== null ? ` (${formatBytes(action.sizeBytes)})` : ''}
                      </button>`
                }
              </div>
            `
          : nothing
      }
      ${failure ? html`<p class="field-error" role="alert">${failure}</p>` : nothing}
    </li>
  `;
};

function paint(): void {
  const target = byId('setup');
  if (loadError) {
    render(html`<p class="hint">The set-up status could not be loaded: ${loadError}</p>`, target);
    return;
  }
  if (!status) return;
  // A ready component may still offer an action (the embedded model in use while Ollama lacks its model: the pull), so the panel stays for it.
  if (status.ready && following.size === 0 && status.components.every((component) => component.action === null)) {
    const summary = status.components.map((component) => `${NAMES[component.component].toLowerCase()} (${component.backend})`).join(', ');
    render(html`<p class="setup-ready"><span aria-hidden="true">✓</span> All ready: ${summary}.</p>`, target);
    return;
  }
  render(
    html`
      <section class="card setup" aria-labelledby="setup-title">
        <h2 id="setup-title">Set-up</h2>
        <p class="hint">What Story Agent needs before it can make a book. Press a button to fetch what is missing; you can already press Generate, and it waits for a model being downloaded.</p>
        <ul class="setup-list">
          ${status.components.map(componentTemplate)}
        </ul>
      </section>
    `,
    target,
  );
}

/** Asks the server what is ready, paints the panel, and follows any download already running. */
export async function refreshSetup(): Promise<void> {
  try {
    ({ setupStatus: status } = await client.request(SetupStatusDocument, {}));
    loadError = null;
  } catch (error) {
    loadError = plainMessage(error);
  }
  for (const component of status?.components ?? []) {
    // A READY component's optional download runs with it READY: the download's state says it runs.
    if (component.download?.state === 'RUNNING') {
      progress.set(component.component, component.download);
      follow(component.component);
    }
  }
  paint();
}

async function startDownload(component: SetupComponent): Promise<void> {
  failures.delete(component);
  try {
    const { startModelDownload } = await client.request(StartModelDownloadDocument, { component });
    progress.set(component, startModelDownload);
    // Said as the server says it in setupStatus while a download runs.
    const downloading = (c: Component): Component =>
      c.state === 'READY'
        ? { ...c, download: startModelDownload, message: c.action ? `${c.message}. Downloading ${c.action.title}` : c.message }
        : {
            ...c,
            state: 'DOWNLOADING',
            download: startModelDownload,
            message: c.action ? `Downloading the ${NAMES[component].toLowerCase()}: ${c.action.title}` : c.message,
          };
    if (status) status = { ...status, components: status.components.map((c) => (c.component === component ? downloading(c) : c)) };
    follow(component);
  } catch (error) {
    failures.set(component, plainMessage(error));
  }
  paint();
}

function follow(component: SetupComponent): void {
  if (following.has(component)) return;
  following.add(component);
  paint();
  followSetupProgress({
    url: wsUrl,
    component,
    connectionParams,
    onProgress: (update) => {
      progress.set(component, update);
      paint();
    },
  })
    .then((last) => {
      if (last.state === 'FAILED' && last.errorMessage) failures.set(component, last.errorMessage);
    })
    .catch((error: unknown) => failures.set(component, plainMessage(error)))
    .finally(() => {
      following.delete(component);
      progress.delete(component);
      void refreshSetup();
    });
}
