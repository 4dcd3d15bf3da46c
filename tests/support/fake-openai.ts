import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  agentOf,
  defaultFakeOllamaOptions,
  maxPagesOf,
  scriptReply,
  type Agent,
  type ChatRequestRecord,
  type ChatTiming,
  type FakeChatServer,
  type FakeOllamaOptions,
} from './fake-ollama.js';

/**
 * A stand-in for an OpenAI-compatible server (llama.cpp's server, vLLM, LM
 * Studio): `POST /v1/chat/completions` streams Server-Sent Events, one
 * `data: {chat.completion.chunk}` per token, the last with `finish_reason`,
 * then `data: [DONE]`; `GET /v1/models` lists the model. It plays the same
 * scripted model as the fake Ollama (same options, same misbehaviours), with
 * reasoning in `delta.reasoning_content` as llama.cpp and vLLM send it.
 * `url` is the base URL clients are given, ending in /v1.
 */
export type FakeOpenAi = FakeChatServer;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function startFakeOpenAi(overrides: Partial<FakeOllamaOptions> = {}): Promise<FakeOpenAi> {
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
    if (req.method === 'GET' && req.url === '/v1/models') {
      return json(200, { object: 'list', data: [{ id: options.model, object: 'model', owned_by: 'local' }] });
    }
    if (req.method !== 'POST' || req.url !== '/v1/chat/completions') return json(404, { error: { message: 'Not found', type: 'invalid_request_error' } });

    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
      model: string;
      stream?: boolean;
      messages: { role: string; content: string }[];
      max_tokens?: number;
      max_completion_tokens?: number;
      response_format?: { type?: string; json_schema?: { schema?: unknown } };
    };
    const system = body.messages.find((message) => message.role === 'system' || message.role === 'developer')?.content ?? '';
    const agent = agentOf(system);
    const record: ChatRequestRecord = {
      agent,
      model: body.model,
      stream: body.stream === true,
      messages: body.messages,
      maxTokens: body.max_tokens ?? body.max_completion_tokens,
      structured: body.response_format?.type === 'json_schema',
      maxPages: maxPagesOf(body.response_format?.json_schema?.schema),
    };
    requests.push(record);
    const timing: ChatTiming = { agent, startedAt: performance.now() };
    timings.push(timing);

    if (body.model !== options.model) {
      return json(404, { error: { message: `The model \`${body.model}\` does not exist`, type: 'invalid_request_error', code: 'model_not_found' } });
    }
    const failure = options.failures[agent];
    if (failure?.kind === 'http-error') return json(failure.status, { error: { message: failure.message, type: 'server_error' } });

    let gone = false;
    res.on('close', () => {
      if (!res.writableFinished) {
        gone = true;
        abandoned.push(agent);
      }
    });
    // No thinking switch is common to OpenAI-compatible servers: a reasoning model reasons.
    const reply = scriptReply(options, record, false);
    await sleep(options.firstTokenDelayMs[agent]);
    if (gone) return;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    if (failure?.kind === 'stall-after-headers') return void res.flushHeaders();
    const created = Math.floor(Date.now() / 1000);
    const event = (delta: Record<string, string>, finishReason: string | null) =>
      `data: ${JSON.stringify({ id: 'chatcmpl-fake', object: 'chat.completion.chunk', created, model: body.model, choices: [{ index: 0, delta, finish_reason: finishReason }] })}\n\n`;

    res.write(event({ role: 'assistant', content: '' }, null));
    for (const token of reply.thinking) {
      if (gone) return;
      res.write(event({ reasoning_content: token }, null));
    }
    for (const [index, token] of reply.content.entries()) {
      if (gone) return;
      if (failure?.kind === 'drop-mid-stream' && index === Math.floor(reply.content.length / 2)) {
        res.socket?.destroy();
        return;
      }
      if (failure?.kind === 'stall-mid-stream' && index === Math.floor(reply.content.length / 2)) return;
      res.write(event({ content: token }, null));
      if (options.tokenDelayMs[agent] > 0) await sleep(options.tokenDelayMs[agent]);
    }
    if (gone) return;
    if (failure?.kind === 'end-without-done') return void res.end();
    timing.endedAt = performance.now();
    res.write(event({}, reply.doneReason));
    res.end('data: [DONE]\n\n');
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
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
