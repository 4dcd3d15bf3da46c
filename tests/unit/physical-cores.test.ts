import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { physicalCoreCount } from '../../src/adapters/text/physical-cores.js';

describe('physical cores (EMBEDDED_THREADS default)', () => {
  it('is at least 1 and never more than the CPUs this process may use', () => {
    const cores = physicalCoreCount();
    expect(cores).toBeGreaterThanOrEqual(1);
    expect(cores).toBeLessThanOrEqual(os.availableParallelism());
  });

  it.runIf(process.platform === 'linux')('counts each physical core once on Linux, as lscpu does (hardware threads of one core share it)', () => {
    // lscpu (util-linux) reads the same topology independently: one line per online CPU, "core,socket".
    const lines = execFileSync('lscpu', ['-p=CORE,SOCKET'], { encoding: 'utf8' })
      .split('\n')
      .filter((line) => line !== '' && !line.startsWith('#'));
    const cores = new Set(lines).size;
    expect(physicalCoreCount()).toBe(Math.min(cores, os.availableParallelism()));
  });
});
