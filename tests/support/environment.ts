import fs from 'node:fs';

/**
 * Tools from outside npm that some suites need. A suite whose tool is missing is skipped with a
 * note that says how to install it (the summary line repeats it); with CI=true it fails instead,
 * so a CI machine can never pass by skipping.
 */
export interface Requirement {
  /** The suite's name as the summary line shows it. */
  suite: string;
  /** Null when present; else what is missing and how to install it. */
  missing: string | null;
}

export const SKIP_NOTE_PREFIX = 'missing tool: ';

function requirement(suite: string, executable: string, install: string): Requirement {
  return { suite, missing: fs.existsSync(executable) ? null : `${suite} (no ${executable}: ${install})` };
}

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const chromium = requirement('web', CHROMIUM_PATH, 'apt-get install chromium');

/**
 * Debian's epubcheck is a jar that /usr/bin/epubcheck links to; it runs directly only where
 * binfmt_misc knows jars, so tests start it with `java -jar` (the package depends on a JRE).
 */
export const EPUBCHECK_JAR = process.env.EPUBCHECK_JAR ?? '/usr/share/java/epubcheck.jar';
export const epubcheck = requirement('epub', EPUBCHECK_JAR, 'apt-get install epubcheck');
/** pdfinfo, pdftotext and pdffonts come together. */
export const poppler = requirement('pdf', '/usr/bin/pdfinfo', 'apt-get install poppler-utils');

/**
 * For a suite's beforeAll: true when the suite can run. Throws under CI=true when it cannot.
 * Pair it with `skipWithoutTool` in beforeEach so each test reports the skip and why.
 */
export function toolAvailable(requirement: Requirement): boolean {
  if (!requirement.missing) return true;
  if (process.env.CI === 'true') throw new Error(`CI=true and a test tool is missing: ${requirement.missing}`);
  return false;
}

/** For a suite's beforeEach: skips the test with a note the summary reporter collects. */
export function skipWithoutTool(requirement: Requirement, context: { skip: (condition: boolean, note?: string) => void }): void {
  context.skip(requirement.missing !== null, `${SKIP_NOTE_PREFIX}${requirement.missing}`);
}
