import { z } from 'zod';
import catalogData from './model-catalog.json' with { type: 'json' };

/**
 * The models Story Agent offers to download, read from model-catalog.json
 * (data, not code) and checked once at start-up: each model's source, size
 * in bytes as listed at its revision, and licence (SPDX-style id, name, URL,
 * whether commercial use is allowed and on what terms).
 */
export enum ModelRole {
  /** A GGUF file for the embedded (in-process llama.cpp) text backend. */
  EMBEDDED_TEXT = 'EMBEDDED_TEXT',
  /** A model Ollama pulls from its library. */
  OLLAMA_TEXT = 'OLLAMA_TEXT',
  /** A Stable Diffusion export in the diffusers/Optimum ONNX layout. */
  PICTURES = 'PICTURES',
}

const licenseSchema = z.object({
  id: z.string().min(1),
  name: z.string().min(1),
  url: z.string().url(),
  commercialUse: z.boolean(),
  note: z.string().min(1),
});

const sourceSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('huggingface-file'), repo: z.string().regex(/^[\w.-]+\/[\w.-]+$/), revision: z.string().min(1), file: z.string().min(1) }),
  z.object({ kind: z.literal('huggingface-repo'), repo: z.string().regex(/^[\w.-]+\/[\w.-]+$/), revision: z.string().min(1) }),
  z.object({ kind: z.literal('ollama'), model: z.string().min(1) }),
]);

const entrySchema = z.object({
  id: z.string().min(1),
  role: z.nativeEnum(ModelRole),
  default: z.boolean(),
  title: z.string().min(1),
  source: sourceSchema,
  sizeBytes: z.number().int().positive(),
  license: licenseSchema,
});

const catalogSchema = z
  .object({ models: z.array(entrySchema).min(1) })
  .refine((catalog) => Object.values(ModelRole).every((role) => catalog.models.filter((m) => m.role === role && m.default).length === 1), {
    message: 'every role needs exactly one default model',
  });

export type ModelLicense = z.infer<typeof licenseSchema>;
export type CatalogModel = z.infer<typeof entrySchema>;

export const MODEL_CATALOG: readonly CatalogModel[] = catalogSchema.parse(catalogData).models;

/** The one default model of a role. */
export function defaultModel(role: ModelRole): CatalogModel {
  const model = MODEL_CATALOG.find((candidate) => candidate.role === role && candidate.default);
  // The schema's refinement guarantees one; this names the file if it was edited wrongly anyway.
  if (!model) throw new Error(`model-catalog.json has no default model for ${role}`);
  return model;
}

/** The catalog's entry for a Hugging Face repository or an Ollama model name (`llama3.2`, `llama3.2:latest`), if it has one. */
export function catalogEntryFor(source: string): CatalogModel | undefined {
  const name = source.replace(/:latest$/, '');
  return MODEL_CATALOG.find((model) => (model.source.kind === 'ollama' ? model.source.model === name : model.source.repo === source));
}
