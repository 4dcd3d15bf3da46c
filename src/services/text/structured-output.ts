import { z } from 'zod';
import { removeUnstorable } from './storable-text.js';
import { stripThinking } from './story-output.js';

/**
 * Structured answers: a zod schema becomes the JSON Schema the server is asked
 * to follow (Ollama `format`, OpenAI `response_format`), and the reply is
 * validated with the same schema. Pure functions; ChatModelClient.completeJson
 * does the asking and the one repair attempt.
 */

/** The JSON Schema for `schema` (draft 2020-12, as zod emits it), without the `$schema` key some servers reject. */
export function jsonSchemaOf(schema: z.ZodType): Record<string, unknown> {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema) as Record<string, unknown>;
  return rest;
}

export type ParsedAnswer<T> = { ok: true; value: T } | { ok: false; problem: string };

/**
 * Reads a JSON answer the way models give it: reasoning, code fences or a
 * sentence around the object are tolerated; the object itself must match.
 */
export function parseJsonAnswer<T>(text: string, schema: z.ZodType<T>): ParsedAnswer<T> {
  const answer = stripThinking(text).trim();
  const start = answer.indexOf('{');
  const end = answer.lastIndexOf('}');
  if (start < 0 || end < start) return { ok: false, problem: answer === '' ? 'the answer was empty' : 'the answer held no JSON object' };
  let json: unknown;
  try {
    // An escaped "\u0000" in the JSON is as unstorable as a raw one.
    json = JSON.parse(answer.slice(start, end + 1), (_key, value: unknown) => (typeof value === 'string' ? removeUnstorable(value) : value));
  } catch (error) {
    return { ok: false, problem: `the JSON did not parse (${(error as Error).message})` };
  }
  const result = schema.safeParse(json);
  if (result.success) return { ok: true, value: result.data };
  return { ok: false, problem: result.error.issues.map((issue) => `${issue.path.join('.') || 'answer'}: ${issue.message}`).join('; ') };
}

/** What a model is told after an answer that did not match, for its one second try. */
export function repairInstruction(problem: string, jsonSchema: Record<string, unknown>): string {
  return [
    `Your answer could not be used: ${problem}.`,
    `Reply again with only one JSON object matching this JSON Schema, and nothing else: ${JSON.stringify(jsonSchema)}`,
  ].join('\n');
}
