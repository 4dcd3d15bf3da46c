import { Arg, Mutation, Query, Resolver, Root, Subscription } from 'type-graphql';
import { SetupComponent } from '../ports/setup.js';
import { SetupProgressView, SetupStatusView } from '../schema/setup-types.js';
import type { DownloadProgress, SetupService } from '../services/setup/setup-service.js';
import type { RequestContext } from './context.js';

@Resolver()
export class SetupResolver {
  constructor(private readonly setup: SetupService) {}

  @Query(() => SetupStatusView, { description: 'What is ready (story model, picture model, database) and the one action that fixes each missing piece.' })
  setupStatus(): Promise<SetupStatusView> {
    return this.setup.report();
  }

  @Mutation(() => SetupProgressView, {
    description:
      'Starts the download that fixes a missing component (its action in setupStatus), or joins the one running. BAD_USER_INPUT when there is nothing to download for it. Follow it with setupProgress.',
  })
  startModelDownload(@Arg('component', () => SetupComponent) component: SetupComponent): Promise<SetupProgressView> {
    return this.setup.startDownload(component);
  }

  @Subscription(() => SetupProgressView, {
    description:
      "A component's download: its current state first (IDLE when none has run in this server process), then progress, ending after COMPLETED or FAILED.",
    subscribe: ({ args, context }) => (context as RequestContext).setup.follow(args.component as SetupComponent),
  })
  setupProgress(@Root() progress: DownloadProgress, @Arg('component', () => SetupComponent) _component: SetupComponent): SetupProgressView {
    return progress;
  }
}
