import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A fake Ollama speaking the real protocol: `POST /api/chat` answers NDJSON
 * lines as Ollama streams them, `GET /api/tags` lists the model. Which agent
 * is asking is read from the system prompt, so each gets its scripted reply.
 */
export type Agent = 'story' | 'character' | 'background';

export type Failure =
  | { kind: 'http-error'; status: number; message: string }
  /** Sends half the reply, then destroys the socket. */
  | { kind: 'drop-mid-stream' }
  /** Sends the whole reply but never the closing `done` line. */
  | { kind: 'end-without-done' };

export interface FakeOllamaOptions {
  model: string;
  replies: Record<Agent, string>;
  /** Delay before each streamed token. */
  tokenDelayMs: Record<Agent, number>;
  /** Delay before the first line. */
  firstTokenDelayMs: Record<Agent, number>;
  failures: Partial<Record<Agent, Failure>>;
  /**
   * Load benchmarks: the story is sent as a `Title: Bench` line, then one token per body token of
   * the reply, each ` t<emission time in ms>` (performance.timeOrigin + performance.now(), sub-ms),
   * so a client can tell how long each token took to reach it. Off by default.
   */
  stampStoryTokens?: boolean;
}

export interface ChatRequestRecord {
  agent: Agent;
  model: string;
  stream: boolean;
  messages: { role: string; content: string }[];
}

export interface ChatTiming {
  agent: Agent;
  /** performance.now() at the request and at the closing line. */
  startedAt: number;
  endedAt?: number;
  /** With stampStoryTokens: how many stamped story tokens were written. */
  stampsSent?: number;
}

export interface FakeOllama {
  url: string;
  timings: ChatTiming[];
  options: FakeOllamaOptions;
  requests: ChatRequestRecord[];
  /** Requests whose client went away before the reply was finished. */
  abandoned: Agent[];
  close(): Promise<void>;
}

export const DEFAULT_REPLIES: Record<Agent, string> = {
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
    tokenDelayMs: { story: 1, character: 0, background: 0 },
    firstTokenDelayMs: { story: 0, character: 0, background: 0 },
    failures: {},
    ...overrides,
  };
}

function agentOf(systemPrompt: string): Agent {
  if (/storyteller/i.test(systemPrompt)) return 'story';
  if (/main character/i.test(systemPrompt)) return 'character';
  if (/main setting/i.test(systemPrompt)) return 'background';
  throw new Error(`fake Ollama cannot tell which agent sent: ${systemPrompt.slice(0, 80)}`);
}

/** Splits text the way a tokenizer roughly would: words with their leading space, newlines on their own. */
export function tokenize(text: string): string[] {
  return text.match(/\s*\S+|\s+$/g) ?? [];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function startFakeOllama(overrides: Partial<FakeOllamaOptions> = {}): Promise<FakeOllama> {
  const options = defaultFakeOllamaOptions(overrides);
  const requests: ChatRequestRecord[] = [];
  const abandoned: Agent[] = [];
  const timings: ChatTiming[] = [];

  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };

    if (req.method === 'GET' && req.url === '/api/tags') {
      return json(200, { models: [{ name: `${options.model}:latest`, model: `${options.model}:latest`, size: 2019393189 }] });
    }
    if (req.method !== 'POST' || req.url !== '/api/chat') return json(404, { error: 'not found' });

    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as ChatRequestRecord & { model: string };
    const system = body.messages.find((message) => message.role === 'system')?.content ?? '';
    const agent = agentOf(system);
    requests.push({ agent, model: body.model, stream: body.stream !== false, messages: body.messages });
    const timing: ChatTiming = { agent, startedAt: performance.now() };
    timings.push(timing);

    if (body.model !== options.model && body.model !== `${options.model}:latest`) {
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
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    const line = (content: string, done: boolean) =>
      `${JSON.stringify({
        model: body.model,
        created_at: new Date().toISOString(),
        message: { role: 'assistant', content },
        done,
        ...(done
          ? {
              done_reason: 'stop',
              total_duration: 1_000_000,
              load_duration: 1000,
              prompt_eval_count: 42,
              prompt_eval_duration: 1000,
              eval_count: 100,
              eval_duration: 1000,
            }
          : {}),
      })}\n`;

    const stamped = options.stampStoryTokens === true && agent === 'story';
    const tokens = stamped ? ['Title: Bench\n', ...tokenize(options.replies.story.split('\n').slice(1).join('\n'))] : tokenize(options.replies[agent]);
    await sleep(options.firstTokenDelayMs[agent]);
    for (const [index, token] of tokens.entries()) {
      if (gone) return;
      if (failure?.kind === 'drop-mid-stream' && index === Math.floor(tokens.length / 2)) {
        res.socket?.destroy();
        return;
      }
      if (stamped && index > 0) {
        res.write(line(` t${(performance.timeOrigin + performance.now()).toFixed(3)}`, false));
        timing.stampsSent = (timing.stampsSent ?? 0) + 1;
      } else {
        res.write(line(token, false));
      }
      if (options.tokenDelayMs[agent] > 0) await sleep(options.tokenDelayMs[agent]);
    }
    if (gone) return;
    if (failure?.kind === 'end-without-done') return void res.end();
    timing.endedAt = performance.now();
    res.end(line('', true));
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    options,
    requests,
    abandoned,
    timings,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
