import fsp from 'node:fs/promises';
import path from 'node:path';
import { MODEL_FILES, validateModelDir } from '../../../packages/onnx-diffusion/src/index.js';

/**
 * Notices a Stable Diffusion ONNX model that appears in a folder while the process runs
 * (downloaded by another process onto shared disk, or copied there by hand). Each look stats
 * the model's files (MODEL_FILES, seven of them); the full check (validateModelDir, as the
 * set-up panel's, which parses the JSON files) runs again only when one of them changed since
 * the last check that failed.
 */
export class PictureModelArrival {
  /** The files' identities at the last full check that failed; null when none failed. */
  private rejected: string | null = null;

  constructor(private readonly modelDir: string) {}

  /** Whether `modelDir` now holds a complete model. Never throws: a missing or broken folder is false. */
  async isComplete(): Promise<boolean> {
    const stats = await Promise.all(Object.values(MODEL_FILES).map((file) => fsp.stat(path.join(this.modelDir, file)).catch(() => null)));
    if (stats.some((stat) => !stat?.isFile())) return false;
    const identity = stats.map((stat) => `${stat?.ino}:${stat?.mtimeMs}:${stat?.size}`).join(' ');
    if (identity === this.rejected) return false;
    try {
      validateModelDir(this.modelDir);
      return true;
    } catch {
      this.rejected = identity;
      return false;
    }
  }
}
