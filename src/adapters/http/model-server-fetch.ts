import { Agent, fetch as undiciFetch } from 'undici';
import type { ModelServerCall, ModelServerLimits } from '../../ports/model-server-call.js';

/**
 * fetch for calls to model servers (Ollama, OpenAI-compatible, AUTOMATIC1111).
 *
 * Node's built-in fetch gives up after 300 s without response headers and
 * after 300 s between body chunks, whatever timeout the caller passes; a model
 * that loads for five minutes, or a picture server that answers only when the
 * picture is done, was cut off as "connection broke". Every call here goes
 * through an undici Agent whose headersTimeout/bodyTimeout are the configured
 * total timeout, so the configured timeout is the one that applies.
 *
 * The stall limit is separate: once the response has started (headers
 * received), no byte for stallTimeoutMs aborts the call, so a server that
 * answers and then sends nothing frees its slot long before the total
 * timeout. The wait for the headers is bounded by the total timeout only:
 * Ollama sends none while it loads a model, which may take minutes.
 */
/** The abort reason of a call that went silent. */
class ModelServerStalled extends Error {
  override name = 'ModelServerStalled';
  constructor(readonly silentMs: number) {
    super(`no data from the model server for ${silentMs} ms`);
  }
}

const agents = new Map<number, Agent>();

/**
 * The undici connection pool whose headersTimeout and bodyTimeout are `timeoutMs` (ms), one per
 * value, shared by every call with it. 0 turns both off, for a caller that watches the exchange
 * itself (an Ollama pull, whose own stall rule is the limit).
 */
export function modelServerAgent(timeoutMs: number): Agent {
  let agent = agents.get(timeoutMs);
  if (!agent) {
    agent = new Agent({ headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
    agents.set(timeoutMs, agent);
  }
  return agent;
}

/**
 * A fetch bound to the limits and to `signal` (the caller's cancel), plus
 * flags that tell afterwards why a request was aborted: error objects are
 * re-wrapped by client libraries, the flags are not.
 */
export function modelServerCall(limits: ModelServerLimits, signal?: AbortSignal): ModelServerCall {
  let stalled = false;
  let timedOut = false;
  const fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const silence = new AbortController();
    const total = AbortSignal.timeout(limits.timeoutMs);
    total.addEventListener('abort', () => (timedOut = true), { once: true });
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(timer);
      if (!limits.stallTimeoutMs) return;
      const silentMs = limits.stallTimeoutMs;
      timer = setTimeout(() => {
        stalled = true;
        silence.abort(new ModelServerStalled(silentMs));
      }, silentMs);
      timer.unref();
    };
    const signals = [silence.signal, total, ...(signal ? [signal] : []), ...(init?.signal ? [init.signal] : [])];
    let response: Response;
    try {
      response = (await undiciFetch(input as Parameters<typeof undiciFetch>[0], {
        ...(init as Parameters<typeof undiciFetch>[1]),
        signal: AbortSignal.any(signals),
        dispatcher: modelServerAgent(limits.timeoutMs),
      })) as unknown as Response;
    } catch (error) {
      clearTimeout(timer);
      throw error;
    }
    if (!response.body) {
      clearTimeout(timer);
      return response;
    }
    arm();
    const watched = response.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          arm();
          controller.enqueue(chunk);
        },
        flush() {
          clearTimeout(timer);
        },
      }),
    );
    return new Response(watched, { status: response.status, statusText: response.statusText, headers: response.headers });
  };
  return { fetch: fetch as typeof globalThis.fetch, stalled: () => stalled, timedOut: () => timedOut };
}
