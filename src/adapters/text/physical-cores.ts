import fs from 'node:fs';
import os from 'node:os';

/**
 * How many physical CPU cores this process may use: the default thread count
 * for llama.cpp, whose matrix work gains nothing from a core's second
 * hardware thread (SMT/Hyper-Threading) and slows down when two threads
 * fight over one core's vector units.
 *
 * Linux: the distinct (physical_package_id, core_id) pairs of the online CPUs
 * in /sys/devices/system/cpu/cpuN/topology, which is exact. macOS on Apple
 * silicon has no SMT, so every logical CPU is a core. Elsewhere (Windows,
 * Intel macs, a Linux without sysfs) half the logical CPUs, since desktop x86
 * CPUs run two threads a core. Never more than os.availableParallelism(),
 * which honours the CPU affinity a container or `taskset` sets, and never
 * less than 1.
 */
export function physicalCoreCount(): number {
  const logical = os.availableParallelism();
  const fromTopology = process.platform === 'linux' ? linuxCores() : null;
  const cores = fromTopology ?? (process.platform === 'darwin' && process.arch === 'arm64' ? logical : Math.ceil(logical / 2));
  return Math.max(1, Math.min(cores, logical));
}

const CPU_DIR = '/sys/devices/system/cpu';

/** Distinct physical cores among the online CPUs, or null when sysfs does not say. */
function linuxCores(): number | null {
  try {
    const online = parseCpuList(fs.readFileSync(`${CPU_DIR}/online`, 'utf8'));
    const cores = new Set<string>();
    for (const cpu of online) {
      const topology = `${CPU_DIR}/cpu${cpu}/topology`;
      const read = (name: string) => fs.readFileSync(`${topology}/${name}`, 'utf8').trim();
      cores.add(`${read('physical_package_id')}:${read('core_id')}`);
    }
    return cores.size > 0 ? cores.size : null;
  } catch {
    return null;
  }
}

/** The kernel's CPU list format: "0-3,8,10-11". */
function parseCpuList(list: string): number[] {
  return list
    .trim()
    .split(',')
    .filter(Boolean)
    .flatMap((range) => {
      const [first, last = first] = range.split('-').map(Number);
      return Array.from({ length: last - first + 1 }, (_, index) => first + index);
    });
}
