/**
 * TEXT_BACKEND unset: which backend a generation starting now gets, decided from one
 * look at Ollama and the disk. The one rule both the generations (AutoTextBackend) and
 * the set-up panel (SetupService) follow, so the two always agree.
 */

/** What TEXT_BACKEND unset chooses between, by their TEXT_BACKEND names. */
export type AutoChoice = 'ollama' | 'embedded';

/** Why the choice is what it is (the `reason` field of the log line that says so). */
export enum AutoChoiceReason {
  /** Ollama answers and has OLLAMA_MODEL: Ollama. */
  OLLAMA_HAS_MODEL = 'ollama-has-model',
  /** Ollama answers without OLLAMA_MODEL and EMBEDDED_MODEL_FILE is on disk: the embedded model, which works now. */
  OLLAMA_LACKS_MODEL = 'ollama-lacks-model',
  /** Ollama answers without OLLAMA_MODEL and no embedded model is on disk: Ollama, whose pull the set-up panel offers. */
  OLLAMA_NEEDS_PULL = 'ollama-needs-pull',
  /** No Ollama answers: the embedded model (downloaded first if it is not on disk). */
  OLLAMA_DOWN = 'ollama-down',
}

/** One look at what is there. */
export interface AutoLook {
  /** The models Ollama lists (`GET /api/tags`, `name:tag`); null when no Ollama answers. */
  ollamaModels: string[] | null;
  /** Whether EMBEDDED_MODEL_FILE is on disk. */
  embeddedModelPresent: boolean;
}

export interface AutoDecision {
  backend: AutoChoice;
  reason: AutoChoiceReason;
  /** Whether the chosen backend has its model now (a generation on it need not wait for a story-model download). */
  modelPresent: boolean;
}

/**
 * The backend for `look` with OLLAMA_MODEL `ollamaModel`: Ollama when it has the model;
 * the embedded model when no Ollama answers, or when Ollama lacks the model and the
 * embedded GGUF is on disk; else Ollama, to pull the model into.
 */
export function chooseAutoBackend(look: AutoLook, ollamaModel: string): AutoDecision {
  if (look.ollamaModels === null) return { backend: 'embedded', reason: AutoChoiceReason.OLLAMA_DOWN, modelPresent: look.embeddedModelPresent };
  if (hasOllamaModel(look.ollamaModels, ollamaModel)) return { backend: 'ollama', reason: AutoChoiceReason.OLLAMA_HAS_MODEL, modelPresent: true };
  if (look.embeddedModelPresent) return { backend: 'embedded', reason: AutoChoiceReason.OLLAMA_LACKS_MODEL, modelPresent: true };
  return { backend: 'ollama', reason: AutoChoiceReason.OLLAMA_NEEDS_PULL, modelPresent: false };
}

/**
 * Whether Ollama, listing `installed` (`name:tag`), serves `model` as OLLAMA_MODEL names it:
 * a name without a tag means `:latest` (`llama3.2` is `llama3.2:latest`); otherwise the tag
 * must match exactly (`qwen2.5:1.5b` is not `qwen2.5:1.5b-instruct`: Ollama answers "model
 * not found" for one while it has only the other).
 */
export function hasOllamaModel(installed: string[], model: string): boolean {
  const wanted = model.includes(':') ? model : `${model}:latest`;
  return installed.includes(wanted) || installed.includes(model);
}
