/** What every chat backend is configured with (one set of variables per backend in config.ts). */
export interface ChatServerSettings {
  /** Where the server answers, without a trailing slash. */
  baseUrl: string;
  model: string;
  temperature: number;
  /** The whole exchange, request to last byte (ms). */
  requestTimeoutMs: number;
}

/** The part of ChatBackend every backend answers the same way: its settings, read-only. */
export abstract class ConfiguredChatBackend<Settings extends ChatServerSettings> {
  constructor(protected readonly config: Settings) {}

  get baseUrl(): string {
    return this.config.baseUrl;
  }
  get model(): string {
    return this.config.model;
  }
  get temperature(): number {
    return this.config.temperature;
  }
  get requestTimeoutMs(): number {
    return this.config.requestTimeoutMs;
  }
}
