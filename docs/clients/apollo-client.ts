import { ApolloClient, ApolloLink, gql, HttpLink, InMemoryCache } from '@apollo/client';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { getMainDefinition, relayStylePagination } from '@apollo/client/utilities';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

/** Apollo Client: queries and mutations over HTTP, subscriptions over graphql-ws, one normalized cache. */
export function createApolloClient(url = 'http://localhost:4000/graphql', apiKey?: string) {
  const authorization = apiKey ? { authorization: `Bearer ${apiKey}` } : undefined;
  const http = new HttpLink({ uri: url, headers: authorization });
  const ws = new GraphQLWsLink(
    createClient({
      url: url.replace(/^http/, 'ws'),
      webSocketImpl: WebSocket, // Node 20 has no global WebSocket; leave this out in a browser
      connectionParams: authorization,
    }),
  );
  const isSubscription = ({ query }: ApolloLink.Operation) => {
    const definition = getMainDefinition(query);
    return definition.kind === 'OperationDefinition' && definition.operation === 'subscription';
  };
  return new ApolloClient({
    link: ApolloLink.split(isSubscription, ws, http),
    cache: new InMemoryCache({
      // Pages of storyConnection (first/after) are merged into one list.
      typePolicies: { Query: { fields: { storyConnection: relayStylePagination() } } },
    }),
  });
}

export const STORIES = gql`
  query Stories($after: String) {
    storyConnection(first: 10, after: $after) {
      edges { cursor node { id title createdAt combinedImage { url } } }
      pageInfo { hasNextPage endCursor }
      totalCount
    }
  }
`;

/** Each event carries the session object: the cache's GenerationSession:<id> follows it. */
export const PROGRESS = gql`
  subscription Progress($sessionId: ID!) {
    generationProgress(sessionId: $sessionId) {
      storyTextDelta
      session { id status progressPercentage stage stageCode warnings }
    }
  }
`;

const REMOVE_STORY = gql`
  mutation RemoveStory($id: ID!) {
    removeStory(id: $id) { deletedStoryId }
  }
`;

/** Deletes a story and evicts it from the cache, so cached lists drop it too. */
export async function removeStory(client: ApolloClient, id: string): Promise<void> {
  await client.mutate<{ removeStory: { deletedStoryId: string } }>({
    mutation: REMOVE_STORY,
    variables: { id },
    update(cache, { data }) {
      if (!data) return;
      cache.evict({ id: cache.identify({ __typename: 'Story', id: data.removeStory.deletedStoryId }) });
      cache.gc();
    },
  });
}
