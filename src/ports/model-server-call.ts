/**
 * How services reach model servers over HTTP: a fetch bound to a call's limits and cancel
 * signal, and flags that tell afterwards why a request was aborted. The adapter
 * (src/adapters/http/model-server-fetch.ts) explains the limits it enforces.
 */
export interface ModelServerLimits {
  /** The whole exchange, request to last byte (ms). */
  timeoutMs: number;
  /** Longest silence allowed once the response has started (ms). Unset: none. */
  stallTimeoutMs?: number;
}

export interface ModelServerCall {
  fetch: typeof globalThis.fetch;
  /** Whether a request of this call was aborted for silence (MODEL_STALL_TIMEOUT_MS). */
  stalled(): boolean;
  /** Whether a request of this call ran past timeoutMs. */
  timedOut(): boolean;
}

/** Opens one call with its limits; `signal` is the caller's cancel. */
export type OpenModelServerCall = (limits: ModelServerLimits, signal?: AbortSignal) => ModelServerCall;
