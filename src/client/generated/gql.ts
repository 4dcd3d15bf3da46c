/* eslint-disable */
import * as types from './graphql.js';
import type { TypedDocumentNode as DocumentNode } from '@graphql-typed-document-node/core';

/**
 * Map of all GraphQL operations in the project.
 *
 * This map has several performance disadvantages:
 * 1. It is not tree-shakeable, so it will include all operations in the project.
 * 2. It is not minifiable, so the string of a GraphQL query will be multiple times inside the bundle.
 * 3. It does not support dead code elimination, so it will add unused operations.
 *
 * Therefore it is highly recommended to use the babel or swc plugin for production.
 * Learn more about it here: https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#reducing-bundle-size
 */
type Documents = {
    "fragment ImageFields on GeneratedImage {\n  id\n  imageType\n  url\n  width\n  height\n  promptUsed\n  seed\n  createdAt\n}\n\nfragment StoryFields on Story {\n  id\n  title\n  prompt\n  storyText\n  characterDescription\n  backgroundDescription\n  createdAt\n  images {\n    ...ImageFields\n  }\n  characterImage {\n    ...ImageFields\n  }\n  backgroundImage {\n    ...ImageFields\n  }\n  combinedImage {\n    ...ImageFields\n  }\n}\n\nfragment SessionFields on GenerationSession {\n  id\n  status\n  progressPercentage\n  stage\n  errorMessage\n  warnings\n  prompt\n  createdAt\n  updatedAt\n}\n\nmutation StartGeneration($input: StartGenerationInput!) {\n  startGeneration(input: $input) {\n    ...SessionFields\n  }\n}\n\nmutation CancelGeneration($id: ID!) {\n  cancelGeneration(id: $id) {\n    ...SessionFields\n  }\n}\n\nmutation DeleteStory($id: ID!) {\n  deleteStory(id: $id)\n}\n\nquery GenerationSession($id: ID!) {\n  generationSession(id: $id) {\n    ...SessionFields\n    story {\n      ...StoryFields\n    }\n  }\n}\n\nquery Story($id: ID!) {\n  story(id: $id) {\n    ...StoryFields\n  }\n}\n\nquery Stories($limit: Int, $offset: Int) {\n  stories(limit: $limit, offset: $offset) {\n    ...StoryFields\n  }\n}\n\nsubscription GenerationProgress($sessionId: ID!) {\n  generationProgress(sessionId: $sessionId) {\n    sessionId\n    status\n    progressPercentage\n    stage\n    storyTextDelta\n    storyTextReset\n    errorMessage\n    warnings\n    storyId\n  }\n}\n\nfragment StorySummaryFields on Story {\n  id\n  title\n  prompt\n  createdAt\n  images {\n    id\n    imageType\n    url\n  }\n}\n\nquery StoryList($limit: Int, $offset: Int) {\n  stories(limit: $limit, offset: $offset) {\n    ...StorySummaryFields\n  }\n}": typeof types.ImageFieldsFragmentDoc,
};
const documents: Documents = {
    "fragment ImageFields on GeneratedImage {\n  id\n  imageType\n  url\n  width\n  height\n  promptUsed\n  seed\n  createdAt\n}\n\nfragment StoryFields on Story {\n  id\n  title\n  prompt\n  storyText\n  characterDescription\n  backgroundDescription\n  createdAt\n  images {\n    ...ImageFields\n  }\n  characterImage {\n    ...ImageFields\n  }\n  backgroundImage {\n    ...ImageFields\n  }\n  combinedImage {\n    ...ImageFields\n  }\n}\n\nfragment SessionFields on GenerationSession {\n  id\n  status\n  progressPercentage\n  stage\n  errorMessage\n  warnings\n  prompt\n  createdAt\n  updatedAt\n}\n\nmutation StartGeneration($input: StartGenerationInput!) {\n  startGeneration(input: $input) {\n    ...SessionFields\n  }\n}\n\nmutation CancelGeneration($id: ID!) {\n  cancelGeneration(id: $id) {\n    ...SessionFields\n  }\n}\n\nmutation DeleteStory($id: ID!) {\n  deleteStory(id: $id)\n}\n\nquery GenerationSession($id: ID!) {\n  generationSession(id: $id) {\n    ...SessionFields\n    story {\n      ...StoryFields\n    }\n  }\n}\n\nquery Story($id: ID!) {\n  story(id: $id) {\n    ...StoryFields\n  }\n}\n\nquery Stories($limit: Int, $offset: Int) {\n  stories(limit: $limit, offset: $offset) {\n    ...StoryFields\n  }\n}\n\nsubscription GenerationProgress($sessionId: ID!) {\n  generationProgress(sessionId: $sessionId) {\n    sessionId\n    status\n    progressPercentage\n    stage\n    storyTextDelta\n    storyTextReset\n    errorMessage\n    warnings\n    storyId\n  }\n}\n\nfragment StorySummaryFields on Story {\n  id\n  title\n  prompt\n  createdAt\n  images {\n    id\n    imageType\n    url\n  }\n}\n\nquery StoryList($limit: Int, $offset: Int) {\n  stories(limit: $limit, offset: $offset) {\n    ...StorySummaryFields\n  }\n}": types.ImageFieldsFragmentDoc,
};

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 *
 *
 * @example
 * ```ts
 * const query = graphql(`query GetUser($id: ID!) { user(id: $id) { name } }`);
 * ```
 *
 * The query argument is unknown!
 * Please regenerate the types.
 */
export function graphql(source: string): unknown;

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "fragment ImageFields on GeneratedImage {\n  id\n  imageType\n  url\n  width\n  height\n  promptUsed\n  seed\n  createdAt\n}\n\nfragment StoryFields on Story {\n  id\n  title\n  prompt\n  storyText\n  characterDescription\n  backgroundDescription\n  createdAt\n  images {\n    ...ImageFields\n  }\n  characterImage {\n    ...ImageFields\n  }\n  backgroundImage {\n    ...ImageFields\n  }\n  combinedImage {\n    ...ImageFields\n  }\n}\n\nfragment SessionFields on GenerationSession {\n  id\n  status\n  progressPercentage\n  stage\n  errorMessage\n  warnings\n  prompt\n  createdAt\n  updatedAt\n}\n\nmutation StartGeneration($input: StartGenerationInput!) {\n  startGeneration(input: $input) {\n    ...SessionFields\n  }\n}\n\nmutation CancelGeneration($id: ID!) {\n  cancelGeneration(id: $id) {\n    ...SessionFields\n  }\n}\n\nmutation DeleteStory($id: ID!) {\n  deleteStory(id: $id)\n}\n\nquery GenerationSession($id: ID!) {\n  generationSession(id: $id) {\n    ...SessionFields\n    story {\n      ...StoryFields\n    }\n  }\n}\n\nquery Story($id: ID!) {\n  story(id: $id) {\n    ...StoryFields\n  }\n}\n\nquery Stories($limit: Int, $offset: Int) {\n  stories(limit: $limit, offset: $offset) {\n    ...StoryFields\n  }\n}\n\nsubscription GenerationProgress($sessionId: ID!) {\n  generationProgress(sessionId: $sessionId) {\n    sessionId\n    status\n    progressPercentage\n    stage\n    storyTextDelta\n    storyTextReset\n    errorMessage\n    warnings\n    storyId\n  }\n}\n\nfragment StorySummaryFields on Story {\n  id\n  title\n  prompt\n  createdAt\n  images {\n    id\n    imageType\n    url\n  }\n}\n\nquery StoryList($limit: Int, $offset: Int) {\n  stories(limit: $limit, offset: $offset) {\n    ...StorySummaryFields\n  }\n}"): (typeof documents)["fragment ImageFields on GeneratedImage {\n  id\n  imageType\n  url\n  width\n  height\n  promptUsed\n  seed\n  createdAt\n}\n\nfragment StoryFields on Story {\n  id\n  title\n  prompt\n  storyText\n  characterDescription\n  backgroundDescription\n  createdAt\n  images {\n    ...ImageFields\n  }\n  characterImage {\n    ...ImageFields\n  }\n  backgroundImage {\n    ...ImageFields\n  }\n  combinedImage {\n    ...ImageFields\n  }\n}\n\nfragment SessionFields on GenerationSession {\n  id\n  status\n  progressPercentage\n  stage\n  errorMessage\n  warnings\n  prompt\n  createdAt\n  updatedAt\n}\n\nmutation StartGeneration($input: StartGenerationInput!) {\n  startGeneration(input: $input) {\n    ...SessionFields\n  }\n}\n\nmutation CancelGeneration($id: ID!) {\n  cancelGeneration(id: $id) {\n    ...SessionFields\n  }\n}\n\nmutation DeleteStory($id: ID!) {\n  deleteStory(id: $id)\n}\n\nquery GenerationSession($id: ID!) {\n  generationSession(id: $id) {\n    ...SessionFields\n    story {\n      ...StoryFields\n    }\n  }\n}\n\nquery Story($id: ID!) {\n  story(id: $id) {\n    ...StoryFields\n  }\n}\n\nquery Stories($limit: Int, $offset: Int) {\n  stories(limit: $limit, offset: $offset) {\n    ...StoryFields\n  }\n}\n\nsubscription GenerationProgress($sessionId: ID!) {\n  generationProgress(sessionId: $sessionId) {\n    sessionId\n    status\n    progressPercentage\n    stage\n    storyTextDelta\n    storyTextReset\n    errorMessage\n    warnings\n    storyId\n  }\n}\n\nfragment StorySummaryFields on Story {\n  id\n  title\n  prompt\n  createdAt\n  images {\n    id\n    imageType\n    url\n  }\n}\n\nquery StoryList($limit: Int, $offset: Int) {\n  stories(limit: $limit, offset: $offset) {\n    ...StorySummaryFields\n  }\n}"];

export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}

export type DocumentType<TDocumentNode extends DocumentNode<any, any>> = TDocumentNode extends DocumentNode<  infer TType,  any>  ? TType  : never;