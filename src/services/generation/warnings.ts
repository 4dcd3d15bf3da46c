/**
 * Every kind of warning a generation can end with, in one table: its
 * machine-readable code (the GraphQL enum WarningCode) and what it means. The
 * message given with a warning says the details in words (which picture, the
 * server's answer); clients decide on the code. A new kind is one more entry.
 */
export const WARNING = {
  imagesOff: { code: 'IMAGES_OFF', meaning: 'No image backend is configured (IMAGE_BACKEND=none): the story has no pictures.' },
  pictureModelDownloadFailed: {
    code: 'PICTURE_MODEL_DOWNLOAD_FAILED',
    meaning: 'The picture model this generation waited for could not be downloaded: the story has no pictures.',
  },
  textCut: { code: 'TEXT_CUT', meaning: "A page's text reached a limit (STORY_MAX_CHARS or the model's token limit) and ends at its last full sentence." },
  descriptionFailed: { code: 'DESCRIPTION_FAILED', meaning: 'A picture could not be described, so it was not painted.' },
  characterNotPainted: {
    code: 'CHARACTER_NOT_PAINTED',
    meaning: 'The character picture could not be painted: the pages show their scenes without the character.',
  },
  sceneNotPainted: {
    code: 'SCENE_NOT_PAINTED',
    meaning: "A page's scene could not be painted (the image backend failed or is unreachable): the page keeps its text.",
  },
  pictureUnusable: { code: 'PICTURE_UNUSABLE', meaning: 'The image backend answered with a picture that could not be read.' },
  promptCut: { code: 'PROMPT_CUT', meaning: "A picture's prompt was longer than the text encoder reads; it was painted from the part that fits." },
  characterCutoutFailed: {
    code: 'CHARACTER_CUTOUT_FAILED',
    meaning: 'The character could not be cut out of its picture: the pages show their scenes without it.',
  },
  compositeFailed: { code: 'COMPOSITE_FAILED', meaning: "A page's illustration (the character in its scene) could not be made." },
  describedFromEarlierText: {
    code: 'DESCRIBED_FROM_EARLIER_TEXT',
    meaning:
      "A page's text was edited while its scene was being described again (regeneratePageImage with redescribe): the new picture was described from the earlier text.",
  },
  unclassified: { code: 'UNCLASSIFIED', meaning: 'A warning saved before warnings had codes.' },
} as const satisfies Record<string, { code: string; meaning: string }>;

/** A warning's machine-readable code: one of WARNING's codes. */
export type WarningCode = (typeof WARNING)[keyof typeof WARNING]['code'];

/** WARNING's codes as an enum object (code → code), for GraphQL and for comparing. */
export const WarningCode = Object.fromEntries(Object.values(WARNING).map(({ code }) => [code, code])) as { readonly [C in WarningCode]: C };

/** One warning of a session: its code, its message in words, and the page it is about (null: the whole book, or the character). */
export interface GenerationWarning {
  code: WarningCode;
  message: string;
  pageIndex: number | null;
}
