import { GraphQLError, Kind, type ASTVisitor, type FragmentDefinitionNode, type SelectionSetNode, type ValidationContext } from 'graphql';

/**
 * Bounds what one operation may ask for. Every list here is paged (100 at most),
 * but a thousand aliased `stories` fields would still be a thousand queries; the
 * page and the CLI use a few dozen fields and depth 4.
 */
const QUERY_LIMITS = { maxFields: 300, maxDepth: 8 } as const;

export function queryLimitsRule(limits: { maxFields: number; maxDepth: number } = QUERY_LIMITS) {
  return (context: ValidationContext): ASTVisitor => {
    const fragments = new Map<string, FragmentDefinitionNode>();
    for (const definition of context.getDocument().definitions) {
      if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
    }
    const measure = (set: SelectionSetNode, depth: number, seen: Set<string>): { fields: number; depth: number } => {
      let fields = 0;
      let deepest = depth;
      for (const selection of set.selections) {
        if (selection.kind === Kind.FIELD) {
          // Introspection (Sandbox, codegen) nests deep by design and costs no query.
          if (selection.name.value.startsWith('__')) continue;
          fields += 1;
          if (selection.selectionSet) {
            const inner = measure(selection.selectionSet, depth + 1, seen);
            fields += inner.fields;
            deepest = Math.max(deepest, inner.depth);
          }
        } else {
          const next = selection.kind === Kind.INLINE_FRAGMENT ? selection.selectionSet : fragments.get(selection.name.value)?.selectionSet;
          // A fragment spread inside itself is reported by graphql's own rules; here it just stops.
          const key = selection.kind === Kind.FRAGMENT_SPREAD ? selection.name.value : null;
          if (!next || (key && seen.has(key))) continue;
          const inner = measure(next, depth, key ? new Set([...seen, key]) : seen);
          fields += inner.fields;
          deepest = Math.max(deepest, inner.depth);
        }
      }
      return { fields, depth: deepest };
    };
    return {
      OperationDefinition(operation) {
        const { fields, depth } = measure(operation.selectionSet, 1, new Set());
        if (fields > limits.maxFields) {
          context.reportError(
            new GraphQLError(`This operation selects ${fields} fields; the limit is ${limits.maxFields}. Split it into smaller ones.`, { nodes: [operation] }),
          );
        }
        if (depth > limits.maxDepth) {
          context.reportError(new GraphQLError(`This operation nests ${depth} levels deep; the limit is ${limits.maxDepth}.`, { nodes: [operation] }));
        }
      },
    };
  };
}
