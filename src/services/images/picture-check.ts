import sharp from 'sharp';
import { ImageGenerationError } from '../../ports/image-generator.js';

/**
 * Largest standard deviation (0–255, per channel) of a picture taken as one
 * flat colour. A safety filter's black frame or a float16 overflow's
 * all-black/all-NaN decode has 0; any real illustration has tens.
 */
const FLAT_PICTURE_MAX_STDEV = 2;

export interface CheckedPicture {
  /** PNG at exactly the size asked for. */
  png: Buffer;
  width: number;
  height: number;
  /** (Almost) no variation: nothing was painted. */
  flat: boolean;
}

/**
 * Decodes whatever a backend returned (PNG, JPEG, WebP, …), brings it to the
 * size asked for (scaled to cover, centre kept, when the server painted
 * another size) and re-encodes it as PNG, so what is stored and served is
 * always a PNG of the recorded size. Throws ImageGenerationError when the
 * bytes are not a picture.
 */
export async function checkPicture(data: Buffer, size: { width: number; height: number }, source: string): Promise<CheckedPicture> {
  const image = sharp(data);
  let metadata: Awaited<ReturnType<typeof image.metadata>>;
  try {
    metadata = await image.metadata();
  } catch (error) {
    throw new ImageGenerationError(`${source} returned data that is not a picture (${(error as Error).message})`, { cause: error });
  }
  const resized = metadata.width === size.width && metadata.height === size.height ? image : image.resize(size.width, size.height, { fit: 'cover' });
  const png = await resized.png().toBuffer();
  const { channels } = await sharp(png).stats();
  const colour = channels.slice(0, 3);
  const flat = colour.every((channel) => channel.stdev <= FLAT_PICTURE_MAX_STDEV);
  return { png, width: size.width, height: size.height, flat };
}
