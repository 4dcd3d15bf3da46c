import fsp from 'node:fs/promises';
import type { DataSource } from 'typeorm';
import { validateModelDir } from '../../../packages/onnx-diffusion/src/index.js';
import type { SetupProbes } from '../../ports/setup.js';
import type { TextGenerator } from '../../ports/text-generator.js';
import { probeAutomatic1111 } from '../images/automatic1111-probe.js';

/** The readiness checks on this machine: the database, the configured text server, AUTOMATIC1111, and model files on disk. */
export class LocalSetupProbes implements SetupProbes {
  constructor(
    private readonly dataSource: DataSource,
    private readonly text: Pick<TextGenerator, 'checkAvailable'>,
    private readonly timeoutMs: number,
  ) {}

  async checkDatabase(): Promise<void> {
    await this.dataSource.query('SELECT 1');
  }

  checkTextServer(signal: AbortSignal): Promise<void> {
    return this.text.checkAvailable(signal);
  }

  checkAutomatic1111(url: string): Promise<void> {
    return probeAutomatic1111(url, this.timeoutMs);
  }

  hasFile(file: string): Promise<boolean> {
    return isFile(file);
  }

  async checkPictureModel(dir: string): Promise<void> {
    if (!(await fsp.stat(dir).catch(() => null))) throw new Error('nothing is there yet');
    validateModelDir(dir);
  }
}

/** Whether `file` is there and is a file (not a folder); never throws. */
export async function isFile(file: string): Promise<boolean> {
  return (await fsp.stat(file).catch(() => null))?.isFile() === true;
}
