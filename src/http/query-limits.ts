import {
  GraphQLError,
  Kind,
  getNamedType,
  isListType,
  isNonNullType,
  isObjectType,
  isInterfaceType,
  type ASTVisitor,
  type FieldNode,
  type GraphQLField,
  type FragmentDefinitionNode,
  type GraphQLCompositeType,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValidationContext,
} from 'graphql';

export interface QueryLimits {
  /** Cost units an operation may add up to; one unit is about 100 bytes of answer. */
  maxCost: number;
  /** Nesting of selection sets, the operation's own being 1. */
  maxDepth: number;
  /** Items assumed for a list field whose `limit` (or a connection's `first`) argument is a variable or absent without a default. */
  maxPageSize: number;
  /** Items assumed for a list field that takes no `limit` (Story.images holds one picture of each of 3 types). */
  unpagedListItems: number;
  /** What `__schema` or `__type` costs, whatever it selects: about the size of this schema's full introspection answer. */
  introspectionCost: number;
  /** Cost of one value of a field, by `Type.field`; 1 when not listed. Long texts weigh their length bound / 100. */
  fieldWeights: Readonly<Record<string, number>>;
}

/**
 * The largest query the page and the CLI send, `stories(limit: 100) { …StoryFields }` with every
 * page of a book and its pictures, costs about 32,800 units. 50,000 units bounds one answer near
 * 5 MB (a 5.6 kB query got 23 MB before any limit).
 */
export const QUERY_LIMITS: QueryLimits = {
  maxCost: 50_000,
  maxDepth: 8,
  maxPageSize: 100,
  unpagedListItems: 3,
  introspectionCost: 2_000,
  fieldWeights: { 'Story.storyText': 60, 'Story.prompt': 20, 'GenerationSession.prompt': 20, 'GeneratedImage.promptUsed': 10 },
};

interface Measure {
  cost: number;
  /** Levels below the selection set measured (0 for leaves only). */
  depth: number;
}

/**
 * Bounds what one operation may ask for: its cost (every field's weight times the
 * items of the lists around it, a list's items being its `limit` argument) and its depth.
 *
 * Linear in the document: each fragment is measured once and its measure reused at every
 * spread, so nested fragments each spreading the next twice (a "fragment bomb") cost
 * arithmetic, not a walk of 2^n selections. Costs past Number.MAX_VALUE read as Infinity.
 */
export function queryLimitsRule(limits: QueryLimits = QUERY_LIMITS) {
  return (context: ValidationContext): ASTVisitor => {
    const schema = context.getSchema();
    const fragments = new Map<string, FragmentDefinitionNode>();
    for (const definition of context.getDocument().definitions) {
      if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
    }
    const measured = new Map<string, Measure>();
    const inProgress = new Set<string>();
    let variableDefaults = new Map<string, number>();

    /** The items a page-size argument (`limit` of a list, `first` of a connection) asks for; null when the field takes none. */
    const pageItems = (field: FieldNode, definition: GraphQLField<unknown, unknown>, argumentName: 'limit' | 'first'): number | null => {
      const parameter = definition.args.find((argument) => argument.name === argumentName);
      if (!parameter) return null;
      const given = field.arguments?.find((argument) => argument.name.value === argumentName)?.value;
      if (given?.kind === Kind.INT) return Number(given.value);
      if (given?.kind === Kind.VARIABLE) return variableDefaults.get(given.name.value) ?? limits.maxPageSize;
      return !given && typeof parameter.defaultValue === 'number' ? parameter.defaultValue : limits.maxPageSize;
    };

    const measureFragment = (name: string): Measure => {
      const known = measured.get(name);
      if (known) return known;
      const fragment = fragments.get(name);
      // Unknown fragments and cycles are graphql's own rules' to report; here they weigh nothing.
      if (!fragment || inProgress.has(name)) return { cost: 0, depth: 0 };
      inProgress.add(name);
      const type = schema.getType(fragment.typeCondition.name.value);
      const result = measureSet(fragment.selectionSet, type && (isObjectType(type) || isInterfaceType(type)) ? type : null);
      inProgress.delete(name);
      measured.set(name, result);
      return result;
    };

    const measureSet = (set: SelectionSetNode, parent: GraphQLCompositeType | null): Measure => {
      let cost = 0;
      let depth = 0;
      for (const selection of set.selections) {
        let inner: Measure;
        if (selection.kind === Kind.FIELD) {
          inner = measureField(selection, parent);
        } else if (selection.kind === Kind.INLINE_FRAGMENT) {
          const type = selection.typeCondition ? schema.getType(selection.typeCondition.name.value) : parent;
          inner = measureSet(selection.selectionSet, type && (isObjectType(type) || isInterfaceType(type)) ? type : null);
        } else {
          inner = measureFragment(selection.name.value);
        }
        cost += inner.cost;
        depth = Math.max(depth, inner.depth);
      }
      return { cost, depth };
    };

    const measureField = (field: FieldNode, parent: GraphQLCompositeType | null): Measure => {
      const name = field.name.value;
      if (name === '__schema' || name === '__type') return { cost: limits.introspectionCost, depth: 0 };
      const definition = parent && (isObjectType(parent) || isInterfaceType(parent)) ? parent.getFields()[name] : undefined;
      const weight = (parent && limits.fieldWeights[`${parent.name}.${name}`]) ?? 1;
      if (!definition) return { cost: weight, depth: 0 };
      const type = isNonNullType(definition.type) ? definition.type.ofType : definition.type;
      // A Relay connection's size is its `first`, counted at the connection field; its `edges` list is then one item.
      const edgesOfConnection = name === 'edges' && parent !== null && parent.name.endsWith('Connection');
      const items = isListType(type)
        ? edgesOfConnection
          ? 1
          : (pageItems(field, definition, 'limit') ?? limits.unpagedListItems)
        : (pageItems(field, definition, 'first') ?? 1);
      if (!field.selectionSet) return { cost: weight * items, depth: 0 };
      const named = getNamedType(definition.type);
      const inner = measureSet(field.selectionSet, isObjectType(named) || isInterfaceType(named) ? named : null);
      return { cost: weight + items * inner.cost, depth: inner.depth + 1 };
    };

    const rootType = (operation: OperationDefinitionNode) =>
      operation.operation === 'query' ? schema.getQueryType() : operation.operation === 'mutation' ? schema.getMutationType() : schema.getSubscriptionType();

    return {
      OperationDefinition(operation) {
        variableDefaults = new Map(
          (operation.variableDefinitions ?? []).flatMap((variable) =>
            variable.defaultValue?.kind === Kind.INT ? [[variable.variable.name.value, Number(variable.defaultValue.value)] as const] : [],
          ),
        );
        const { cost, depth } = measureSet(operation.selectionSet, rootType(operation) ?? null);
        if (cost > limits.maxCost) {
          const shown = Number.isFinite(cost) && cost < 1e15 ? String(Math.round(cost)) : 'more than 10^15';
          context.reportError(
            new GraphQLError(
              `This operation costs ${shown} units (fields times list sizes); the limit is ${limits.maxCost}. Ask for fewer fields, smaller pages or fewer aliases.`,
              {
                nodes: [operation],
              },
            ),
          );
        }
        if (depth + 1 > limits.maxDepth) {
          context.reportError(new GraphQLError(`This operation nests ${depth + 1} levels deep; the limit is ${limits.maxDepth}.`, { nodes: [operation] }));
        }
      },
    };
  };
}
