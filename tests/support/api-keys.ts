import { spawn } from 'node:child_process';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '../..');

/** `npm run api-key -- …` (compiled, from dist/) against a test database: exit code and output. */
export function apiKeyCommand(databaseUrl: string, ...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(root, 'dist/server/src/main/api-key.js'), ...args], {
      cwd: root,
      env: { ...process.env, DATABASE_URL: databaseUrl, NODE_ENV: 'test' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Creates an API key for `owner`; throws with the command's output when it fails. */
export async function createApiKey(databaseUrl: string, owner: string): Promise<string> {
  const { code, stdout, stderr } = await apiKeyCommand(databaseUrl, 'create', owner);
  if (code !== 0 || stderr !== '') throw new Error(`api-key create ${owner} exited ${code}: ${stderr}`);
  return stdout.trim().split('\n').at(-1)!;
}
