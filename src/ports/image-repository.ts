import type { GeneratedImage, ImageType } from '../entities/index.js';

export interface NewImage {
  storyId: string;
  imageType: ImageType;
  /** Null for the character picture, the page's index for its scene and composite. */
  pageIndex: number | null;
  filePath: string;
  width: number;
  height: number;
  promptUsed: string;
  seed: number | null;
}

/** Reads and writes of generated pictures' records (the files live in the MediaStore). */
export interface ImageRepository {
  /** Saves one image per story, type and page: a second save returns the first one's row. */
  saveImageOnce(image: NewImage & { id: string }): Promise<GeneratedImage>;
  findImagesByStoryIds(storyIds: readonly string[]): Promise<GeneratedImage[]>;
}
