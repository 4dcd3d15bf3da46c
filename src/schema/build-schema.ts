import 'reflect-metadata';
import { lexicographicSortSchema, printSchema, type GraphQLSchema } from 'graphql';
import { buildSchema, type ContainerType, type PubSub } from 'type-graphql';
import { mapServiceErrors } from '../resolvers/errors.js';
import { GenerationProgressResolver, GenerationResolver } from '../resolvers/generation.resolver.js';
import { SetupResolver } from '../resolvers/setup.resolver.js';
import { StoryPageResolver, StoryResolver } from '../resolvers/story.resolver.js';
import type { GenerationService } from '../services/generation/generation-service.js';
import type { SetupService } from '../services/setup/setup-service.js';
import type { ExportLinks } from '../services/export/export-links.js';
import type { StoryService } from '../services/stories/story-service.js';

export interface SchemaServices {
  generations: GenerationService;
  stories: StoryService;
  setup: SetupService;
  exportLinks: ExportLinks;
}

const RESOLVERS = [StoryResolver, StoryPageResolver, GenerationResolver, GenerationProgressResolver, SetupResolver] as const;

/**
 * type-graphql insists on a PubSub even though every subscription here brings
 * its own `subscribe` (events come from the ProgressBus), so this one refuses use.
 */
const noTopicPubSub: PubSub = {
  publish() {
    throw new Error('Subscriptions here use the ProgressBus, not topics');
  },
  subscribe() {
    throw new Error('Subscriptions here use the ProgressBus, not topics');
  },
};

function build(container: ContainerType): Promise<GraphQLSchema> {
  return buildSchema({ resolvers: RESOLVERS, container, pubSub: noTopicPubSub, globalMiddlewares: [mapServiceErrors], validate: false });
}

/** The served schema: a compatible superset of the public contracts in tests/contract/ (a test holds it to that). */
export function buildAppSchema(services: SchemaServices): Promise<GraphQLSchema> {
  const instances = new Map<unknown, object>([
    [StoryResolver, new StoryResolver(services.stories, services.exportLinks)],
    [StoryPageResolver, new StoryPageResolver(services.stories)],
    [GenerationResolver, new GenerationResolver(services.generations)],
    [SetupResolver, new SetupResolver(services.setup)],
    [GenerationProgressResolver, new GenerationProgressResolver()],
  ]);
  return build({ get: (type: unknown) => instances.get(type) });
}

/** The SDL committed as schema.graphql; printing needs no services. */
export async function printAppSchema(): Promise<string> {
  const schema = await build({
    get: () => {
      throw new Error('printing the schema resolves nothing');
    },
  });
  return `${printSchema(lexicographicSortSchema(schema))}\n`;
}
