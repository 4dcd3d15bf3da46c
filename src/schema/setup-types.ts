import { Field, Float, ObjectType, registerEnumType } from 'type-graphql';
import { SetupComponent } from '../ports/setup.js';
import { ComponentState, DownloadState, SetupActionKind } from '../services/setup/setup-service.js';

/** The set-up panel's shapes: what is ready, what fixes what is not, and downloads as they go. Byte counts are Float (GraphQL's Int is 32-bit). */
registerEnumType(SetupComponent, { name: 'SetupComponent', description: 'A part of the installation the set-up panel reports on.' });
registerEnumType(ComponentState, {
  name: 'SetupComponentState',
  description:
    'READY (also while an optional download of it runs: see `download`); MISSING (the action fixes it); DOWNLOADING (a missing component being downloaded); UNREACHABLE (a server it needs does not answer); OFF (switched off by configuration).',
});
registerEnumType(SetupActionKind, { name: 'SetupActionKind' });
registerEnumType(DownloadState, { name: 'DownloadState', description: 'IDLE: no download of the component has run in this server process.' });

@ObjectType('ModelLicense')
export class ModelLicenseView {
  @Field(() => String, { description: "SPDX-style id, e.g. 'apache-2.0', 'creativeml-openrail-m'." })
  id: string;

  @Field(() => String)
  name: string;

  @Field(() => String)
  url: string;

  @Field(() => Boolean, { description: 'False for non-commercial licences.' })
  commercialUse: boolean;

  @Field(() => String, { description: 'The terms in a sentence: conditions, restrictions.' })
  note: string;
}

@ObjectType('SetupAction', {
  description:
    'The one action that fixes a missing component, or, on a READY story model that the embedded backend serves while Ollama lacks OLLAMA_MODEL, the optional Ollama pull; its size and licence are known before it starts.',
})
export class SetupActionView {
  @Field(() => SetupActionKind)
  kind: SetupActionKind;

  @Field(() => String)
  title: string;

  @Field(() => String, { description: 'Hugging Face repository (and file) or Ollama model name.' })
  source: string;

  @Field(() => Float, { nullable: true, description: 'Bytes to download as the catalog lists them; null when unknown before it starts.' })
  sizeBytes: number | null;

  @Field(() => ModelLicenseView, { nullable: true, description: 'Null for a model outside the catalog: read its model card.' })
  license: ModelLicenseView | null;

  @Field(() => String, { nullable: true, description: 'Folder or file it goes to; null for an Ollama pull.' })
  destination: string | null;
}

@ObjectType('SetupProgress')
export class SetupProgressView {
  @Field(() => SetupComponent)
  component: SetupComponent;

  @Field(() => DownloadState)
  state: DownloadState;

  @Field(() => Float)
  bytesDone: number;

  @Field(() => Float, { nullable: true })
  bytesTotal: number | null;

  @Field(() => Float, { nullable: true, description: 'Over the last few seconds; null until measurable.' })
  bytesPerSecond: number | null;

  @Field(() => Float, { nullable: true })
  secondsLeft: number | null;

  @Field(() => String, { nullable: true })
  errorMessage: string | null;
}

@ObjectType('SetupComponentStatus')
export class SetupComponentStatusView {
  @Field(() => SetupComponent)
  component: SetupComponent;

  @Field(() => ComponentState)
  state: ComponentState;

  @Field(() => String, { description: 'What serves it: ollama, embedded, openai; onnx, automatic1111, none; postgresql, pglite.' })
  backend: string;

  @Field(() => String)
  message: string;

  @Field(() => SetupActionView, { nullable: true })
  action: SetupActionView | null;

  @Field(() => SetupProgressView, { nullable: true, description: 'The running (or last) download of this component in this server process.' })
  download: SetupProgressView | null;
}

@ObjectType('SetupStatus')
export class SetupStatusView {
  @Field(() => Boolean, { description: 'Every component READY or OFF.' })
  ready: boolean;

  @Field(() => [SetupComponentStatusView])
  components: SetupComponentStatusView[];
}
