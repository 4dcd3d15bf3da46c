import type { CodegenConfig } from '@graphql-codegen/cli';

/** GraphQL Code Generator: typed documents from the running server's schema; DateTimeISO arrives as an ISO 8601 string. */
const config: CodegenConfig = {
  schema: 'http://localhost:4000/graphql',
  documents: ['src/**/*.graphql'],
  generates: {
    'src/gql/': {
      preset: 'client',
      config: {
        scalars: { DateTimeISO: 'string' },
        enumsAsTypes: true,
        useTypeImports: true,
      },
    },
  },
};

export default config;
