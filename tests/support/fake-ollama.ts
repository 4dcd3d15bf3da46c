import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A fake Ollama speaking the real protocol: `POST /api/chat` answers NDJSON
 * lines as Ollama streams them, `GET /api/tags` lists the installed models
 * (what TEXT_BACKEND unset looks at; `options.modelInstalled` may change while
 * it runs, as with an `ollama pull` by hand), `GET /api/version` says which
 * Ollama it is, and `POST /api/pull` streams NDJSON progress
 * (`{status}`, then per layer `{status, digest, total, completed}`, then
 * `{status: "success"}`; `{error}` for a model its library does not have) and
 * installs the model. Like Ollama it keeps the layers it has pulled: a pull
 * asked for again reports finished layers at once and resumes the one it was
 * on. On demand a pull stalls, or its connection breaks, as a real one does
 * (`pullStall`). Which agent
 * is asking is read from the system prompt, so each gets its scripted reply.
 * The planner's reply is cut to the number of pages its JSON Schema allows,
 * as a server constraining output to the schema would.
 */
export type Agent = 'planner' | 'story' | 'character' | 'background';

type Failure =
  | { kind: 'http-error'; status: number; message: string }
  /** Sends half the reply, then destroys the socket. */
  | { kind: 'drop-mid-stream' }
  /** Sends the whole reply but never the closing `done` line. */
  | { kind: 'end-without-done' }
  /** Sends the response headers and then nothing, holding the connection open. */
  | { kind: 'stall-after-headers' }
  /** Sends half the reply and then nothing, holding the connection open. */
  | { kind: 'stall-mid-stream' }
  /** Stops after this many tokens with `done_reason: "length"`, as when the token limit is reached. */
  | { kind: 'cut-at-length'; afterTokens: number };

/**
 * How `/api/pull` stalls or breaks. `silent`: once the first layer reaches `atStep`, nothing more
 * is sent and the connection stays open (Ollama hung, or a proxy holding the stream);
 * `repeating`: the layer's last line is sent again every 20 ms with no new byte, as Ollama ticks
 * while its own registry download is stuck; `before-headers`: not even the response headers are
 * sent; `cut`: the socket is destroyed mid-stream, as when a proxy or the network drops it;
 * `reset-before-headers`: the socket is destroyed before the response headers, as a proxy in front
 * of Ollama does when it cannot reach it.
 */
export interface PullStall {
  kind: 'silent' | 'repeating' | 'before-headers' | 'cut' | 'reset-before-headers';
  /** The first layer's progress step it sticks at (a resumed pull sticks there again). */
  atStep: number;
  /** How many pull requests stall; later ones pull normally. Infinity: every one. */
  times: number;
}

/**
 * How a reasoning model reasons before answering. `field`: Ollama's separate
 * `thinking` field (qwen3, deepseek-r1 with thinking on; gpt-oss always);
 * `bare-close`: reasoning in the content ended by only a closing `</think>`
 * (the template opened the tag). Reasoning tokens count against the limit.
 */
interface Reasoning {
  text: string;
  style: 'field' | 'bare-close';
  /** Whether the model stops reasoning when asked (`think: false`); gpt-oss does not. */
  obeysThinkFalse: boolean;
}

export interface FakeOllamaOptions {
  model: string;
  replies: Record<Agent, string>;
  /** Delay before each streamed token. */
  tokenDelayMs: Record<Agent, number>;
  /** Delay before the first line. */
  firstTokenDelayMs: Record<Agent, number>;
  failures: Partial<Record<Agent, Failure>>;
  reasoning: Partial<Record<Agent, Reasoning>>;
  /**
   * Replies given verbatim even when structured output (`format`) is asked for;
   * otherwise a description is wrapped as `{"prompt": …}` the way a constrained model answers.
   */
  rawReplies: Partial<Record<Agent, string[]>>;
  /**
   * Load benchmarks: the story is sent as a `Title: Bench` line, then one token per body token of
   * the reply, each ` t<emission time in ms>` (performance.timeOrigin + performance.now(), sub-ms),
   * so a client can tell how long each token took to reach it. Off by default.
   */
  stampStoryTokens?: boolean;
  /** Whether the model is installed at start (`/api/tags` lists it, `/api/chat` serves it); `/api/pull` installs it. Default true. */
  modelInstalled: boolean;
  /** Layer sizes `/api/pull` reports for the model, in bytes. */
  pullLayers: number[];
  /** Progress lines per layer while pulling. */
  pullStepsPerLayer: number;
  /** Makes pulls stall or break (see PullStall); unset: they do not. */
  pullStall?: PullStall;
  /** How long a pull says nothing after "verifying sha256 digest", as Ollama hashing the layers it downloaded (ms); none when it had them all. Default 0. */
  pullVerifyMs?: number;
}

export interface ChatRequestRecord {
  agent: Agent;
  model: string;
  stream: boolean;
  messages: { role: string; content: string }[];
  /** The token limit asked for (`num_predict` / `max_tokens`). */
  maxTokens?: number;
  /** `think` as sent (Ollama); undefined when absent. */
  think?: boolean;
  /** Whether structured output (a JSON Schema) was asked for. */
  structured: boolean;
  /** The schema's `pages.maxItems`, when it has one (the planner's). */
  maxPages?: number;
}

export interface ChatTiming {
  agent: Agent;
  /** performance.now() at the request and at the closing line. */
  startedAt: number;
  endedAt?: number;
  /** With stampStoryTokens: how many stamped story tokens were written. */
  stampsSent?: number;
}

/** The chat side, which the fake OpenAI-compatible server shares. */
export interface FakeChatServer {
  url: string;
  timings: ChatTiming[];
  options: FakeOllamaOptions;
  requests: ChatRequestRecord[];
  /** Requests whose client went away before the reply was finished. */
  abandoned: Agent[];
  close(): Promise<void>;
}

export interface FakeOllama extends FakeChatServer {
  /** Models asked for through `/api/pull`, in order, one per request. */
  pulls: string[];
  /** Pull requests whose client went away before the pull ended. */
  abandonedPulls: number;
  /** Holds every pull half-way until released; `reached` resolves once a pull is held. */
  pausePulls(): { release(): void; reached: Promise<void> };
  /** Stops listening and drops its connections, so that new ones are refused (ECONNREFUSED), as while Ollama restarts. */
  goDown(): void;
  /** Listens again on the same port, as Ollama once restarted (keeping the layers it pulled). */
  comeBack(): Promise<void>;
}

/** Twelve pages of a plan; the fake sends as many as the request's schema asks for. */
const PLANNED_SCENES = [
  'a lighthouse on a rocky point at dusk, calm grey sea, gulls far away',
  'storm clouds rolling over a dark sea, lighthouse beam cutting the rain',
  'a cosy lighthouse kitchen, kettle on a stove, rain on the window',
  'a wooden door shaking in the wind, wet stone steps, lantern light',
  'the top of the lighthouse, great lamp glowing, sea far below',
  'a calm morning harbour, fishing boats, pale pink sky',
  'a rocky beach after the storm, driftwood, puddles shining',
  'a winding cliff path, heather, wind-bent trees',
  'a starry night over the sea, lighthouse beam sweeping',
  'a village square by the harbour, lanterns, bunting',
  'a small boat on a silver sea at sunrise',
  'the lighthouse in spring, wildflowers on the rocks, blue sky',
];

export const DEFAULT_PLAN = {
  title: 'The Lighthouse Keeper and the Storm',
  characterSheet: 'an elderly lighthouse keeper woman, silver braid, yellow raincoat, kind wrinkled face, holding a lantern',
  pages: PLANNED_SCENES.map((scene, index) => ({
    outline: `Mara and the storm, part ${index + 1}.`,
    scene,
    side: ['left', 'centre', 'right'][index % 3],
    distance: index % 2 === 0 ? 'near' : 'far',
  })),
};

export const DEFAULT_REPLIES: Record<Agent, string> = {
  planner: JSON.stringify(DEFAULT_PLAN),
  story: [
    'Title: The Lighthouse Keeper and the Storm',
    '',
    'Mara had kept the lighthouse on Gull Point for eleven winters, and she had never once spoken to the storm.',
    'That changed on the night the wind knocked three times on her door. "I am tired of being feared," said the storm, in a voice like rolling gravel.',
    'Mara made tea. The storm, it turned out, took it with a great deal of rain. By morning they were friends, and the ships sailed past safely in the calm it promised her.',
  ].join('\n'),
  character:
    'an elderly lighthouse keeper woman, silver braid, yellow raincoat, kind wrinkled face, holding a lantern, full body, standing, plain white background',
  background: 'a lonely lighthouse on a rocky point at dusk, storm clouds over a dark sea, crashing waves, dramatic light, wide shot, no people',
};

export function defaultFakeOllamaOptions(overrides: Partial<FakeOllamaOptions> = {}): FakeOllamaOptions {
  return {
    model: 'llama3.2',
    replies: { ...DEFAULT_REPLIES },
    tokenDelayMs: { planner: 0, story: 1, character: 0, background: 0 },
    firstTokenDelayMs: { planner: 0, story: 0, character: 0, background: 0 },
    failures: {},
    reasoning: {},
    rawReplies: {},
    modelInstalled: true,
    pullLayers: [1_500_000, 12_000, 485],
    pullStepsPerLayer: 4,
    ...overrides,
  };
}

export function agentOf(systemPrompt: string): Agent {
  if (/picture book planner/i.test(systemPrompt)) return 'planner';
  if (/storyteller/i.test(systemPrompt)) return 'story';
  if (/main character/i.test(systemPrompt)) return 'character';
  if (/main setting/i.test(systemPrompt)) return 'background';
  throw new Error(`fake Ollama cannot tell which agent sent: ${systemPrompt.slice(0, 80)}`);
}

/** Splits text the way a tokenizer roughly would: words with their leading space, newlines on their own. */
export function tokenize(text: string): string[] {
  return text.match(/\s*\S+|\s+$/g) ?? [];
}

/** One reply as a model would produce it: reasoning tokens, answer tokens and why it ended. */
export interface ScriptedReply {
  thinking: string[];
  content: string[];
  doneReason: 'stop' | 'length';
}

/**
 * What the scripted model answers to one request, whatever the protocol:
 * reasoning first (unless turned off and obeyed), then the answer, both
 * counting against the token limit, as real servers count them.
 */
export function scriptReply(options: FakeOllamaOptions, request: ChatRequestRecord, thinkOff: boolean): ScriptedReply {
  const { agent } = request;
  const asked = options.rawReplies[agent];
  const raw = asked && asked.length > 0 ? (asked.length > 1 ? asked.shift()! : asked[0]) : null;
  const answer = raw ?? scriptedAnswer(options, request);
  const reasoning = options.reasoning[agent];
  const reasons = reasoning && !(thinkOff && reasoning.obeysThinkFalse);
  let thinking: string[] = [];
  let content = tokenize(answer);
  if (reasons && reasoning.style === 'field') thinking = tokenize(reasoning.text);
  if (reasons && reasoning.style === 'bare-close') content = [...tokenize(reasoning.text), '\n</think>\n\n', ...content];
  const failure = options.failures[agent];
  const limit = Math.min(request.maxTokens ?? Number.POSITIVE_INFINITY, failure?.kind === 'cut-at-length' ? failure.afterTokens : Number.POSITIVE_INFINITY);
  if (thinking.length >= limit) return { thinking: thinking.slice(0, limit), content: [], doneReason: 'length' };
  const room = limit - thinking.length;
  if (content.length > room) return { thinking, content: content.slice(0, room), doneReason: 'length' };
  return { thinking, content, doneReason: 'stop' };
}

/** The scripted answer when no raw reply is queued: descriptions wrapped as `{"prompt": …}`, a plan cut to the pages asked for. */
function scriptedAnswer(options: FakeOllamaOptions, request: ChatRequestRecord): string {
  const reply = options.replies[request.agent];
  if (request.agent === 'planner' && request.maxPages !== undefined) {
    const plan = JSON.parse(reply) as { pages: unknown[] };
    return JSON.stringify({ ...plan, pages: plan.pages.slice(0, request.maxPages) });
  }
  if (request.structured && (request.agent === 'character' || request.agent === 'background')) return JSON.stringify({ prompt: reply });
  return reply;
}

/** `pages.maxItems` of a JSON Schema, if it has one. */
export function maxPagesOf(schema: unknown): number | undefined {
  const pages = (schema as { properties?: { pages?: { maxItems?: unknown } } } | null)?.properties?.pages;
  return typeof pages?.maxItems === 'number' ? pages.maxItems : undefined;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `port`: 0 for any free one; a fixed one to start Ollama where a running server already looks for it. */
export async function startFakeOllama(overrides: Partial<FakeOllamaOptions> = {}, port = 0): Promise<FakeOllama> {
  const options = defaultFakeOllamaOptions(overrides);
  const requests: ChatRequestRecord[] = [];
  const abandoned: Agent[] = [];
  const timings: ChatTiming[] = [];
  const pulls: string[] = [];
  let hold: { released: Promise<void>; reached: () => void } | null = null;
  const isTheModel = (model: string) => model === options.model || model === `${options.model}:latest`;

  // Progress steps done per layer, kept across requests as Ollama keeps its blobs and partial blobs.
  const stepsDone = new Map<number, number>();
  let stalledPulls = 0;
  let abandonedPulls = 0;

  async function pull(body: { model?: string; name?: string }, res: http.ServerResponse) {
    const model = body.model ?? body.name ?? '';
    pulls.push(model);
    res.on('close', () => {
      if (!res.writableFinished) abandonedPulls++;
    });
    const stall = options.pullStall && stalledPulls < options.pullStall.times ? options.pullStall : null;
    if (stall) stalledPulls++;
    if (stall?.kind === 'before-headers') return;
    if (stall?.kind === 'reset-before-headers') return void res.socket?.destroy();
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    const send = (line: object) => res.write(`${JSON.stringify(line)}\n`);
    send({ status: 'pulling manifest' });
    await sleep(1);
    if (!isTheModel(model)) {
      // What Ollama streams for a name its library does not have.
      return void res.end(`${JSON.stringify({ error: 'pull model manifest: file does not exist' })}\n`);
    }
    const paused = hold;
    const steps = options.pullStepsPerLayer;
    // Ollama hashes only the layers this request downloaded; blobs it already had are taken as they are.
    const hadEveryLayer = options.pullLayers.every((_, index) => stepsDone.get(index) === steps);
    for (const [index, total] of options.pullLayers.entries()) {
      const digest = `sha256:${index.toString(16).padStart(64, 'a')}`;
      const line = (step: number) => ({ status: `pulling ${digest.slice(7, 19)}`, digest, total, completed: Math.round((total * step) / steps) });
      const kept = stepsDone.get(index) ?? 0;
      // A finished blob is reported once, whole; a partial one from where it stopped.
      if (kept > 0) send(line(kept));
      for (let step = kept + 1; step <= steps; step++) {
        if (stall && index === 0 && step > stall.atStep) {
          if (stall.kind === 'repeating') {
            const tick = setInterval(() => send(line(step - 1)), 20);
            res.on('close', () => clearInterval(tick));
          }
          // After what was written has gone out, so the client sees the progress before the break.
          if (stall.kind === 'cut') res.write('', () => res.socket?.destroy());
          return;
        }
        send(line(step));
        stepsDone.set(index, step);
        await sleep(1);
        if (paused && index === 0 && step === Math.ceil(steps / 2)) {
          paused.reached();
          await paused.released;
        }
        if (res.destroyed) return;
      }
    }
    send({ status: 'verifying sha256 digest' });
    if (options.pullVerifyMs && !hadEveryLayer) await sleep(options.pullVerifyMs);
    if (res.destroyed) return;
    send({ status: 'writing manifest' });
    options.modelInstalled = true;
    res.end(`${JSON.stringify({ status: 'success' })}\n`);
  }

  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };

    if (req.method === 'GET' && req.url === '/api/version') return json(200, { version: '0.12.6' });
    if (req.method === 'GET' && req.url === '/api/tags') {
      const installed = options.modelInstalled ? [`${options.model}:latest`] : [];
      return json(200, { models: installed.map((name) => ({ name, model: name, size: 2019393189 })) });
    }
    if (req.method === 'POST' && req.url === '/api/pull') return void (await pull(JSON.parse(Buffer.concat(chunks).toString('utf8')), res));
    if (req.method !== 'POST' || req.url !== '/api/chat') return json(404, { error: 'not found' });

    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as ChatRequestRecord & {
      model: string;
      format?: unknown;
      think?: boolean;
      options?: { num_predict?: number };
    };
    const system = body.messages.find((message) => message.role === 'system')?.content ?? '';
    const agent = agentOf(system);
    const record: ChatRequestRecord = {
      agent,
      model: body.model,
      stream: body.stream !== false,
      messages: body.messages,
      maxTokens: body.options?.num_predict,
      think: body.think,
      structured: typeof body.format === 'object' && body.format !== null,
      maxPages: maxPagesOf(body.format),
    };
    requests.push(record);
    const timing: ChatTiming = { agent, startedAt: performance.now() };
    timings.push(timing);

    if (!options.modelInstalled || !isTheModel(body.model)) {
      return json(404, { error: `model "${body.model}" not found, try pulling it first` });
    }
    const failure = options.failures[agent];
    if (failure?.kind === 'http-error') return json(failure.status, { error: failure.message });

    let gone = false;
    res.on('close', () => {
      if (!res.writableFinished) {
        gone = true;
        abandoned.push(agent);
      }
    });
    const reply = scriptReply(options, record, body.think === false);
    await sleep(options.firstTokenDelayMs[agent]);
    if (gone) return;
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    if (failure?.kind === 'stall-after-headers') return void res.flushHeaders();
    const line = (message: { content: string; thinking?: string }, done: boolean) =>
      `${JSON.stringify({
        model: body.model,
        created_at: new Date().toISOString(),
        message: { role: 'assistant', ...message },
        done,
        ...(done
          ? {
              done_reason: reply.doneReason,
              total_duration: 1_000_000,
              load_duration: 1000,
              prompt_eval_count: 42,
              prompt_eval_duration: 1000,
              eval_count: 100,
              eval_duration: 1000,
            }
          : {}),
      })}\n`;

    for (const token of reply.thinking) {
      if (gone) return;
      res.write(line({ content: '', thinking: token }, false));
    }
    const stamped = options.stampStoryTokens === true && agent === 'story';
    const tokens = stamped ? ['Title: Bench\n', ...tokenize(options.replies.story.split('\n').slice(1).join('\n'))] : reply.content;
    for (const [index, token] of tokens.entries()) {
      if (gone) return;
      if (failure?.kind === 'drop-mid-stream' && index === Math.floor(tokens.length / 2)) {
        res.socket?.destroy();
        return;
      }
      if (failure?.kind === 'stall-mid-stream' && index === Math.floor(tokens.length / 2)) return;
      if (stamped && index > 0) {
        res.write(line({ content: ` t${(performance.timeOrigin + performance.now()).toFixed(3)}` }, false));
        timing.stampsSent = (timing.stampsSent ?? 0) + 1;
      } else {
        res.write(line({ content: token }, false));
      }
      if (options.tokenDelayMs[agent] > 0) await sleep(options.tokenDelayMs[agent]);
    }
    if (gone) return;
    if (failure?.kind === 'end-without-done') return void res.end();
    timing.endedAt = performance.now();
    res.end(line({ content: '' }, true));
  });

  const listen = (on: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(on, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  await listen(port);
  const boundPort = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${boundPort}`,
    options,
    requests,
    abandoned,
    timings,
    pulls,
    get abandonedPulls() {
      return abandonedPulls;
    },
    pausePulls() {
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
    goDown: () => {
      server.close();
      server.closeAllConnections();
    },
    comeBack: () => listen(boundPort),
    close: () =>
      new Promise<void>((resolve) => {
        hold = null;
        if (!server.listening) return resolve();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
