import type { ModelLicense } from './model-catalog.js';

/**
 * A model's licence as the CLI prints it before a download, e.g.
 *   Licence: Apache License 2.0 (apache-2.0), commercial use allowed
 *     Use, change and redistribute, commercially too; keep the licence and notices.
 *     https://…/LICENSE
 * A model outside the catalog points at its model card instead.
 */
export function licenseLines(license: ModelLicense | null, modelCardUrl: string): string[] {
  if (!license) return [`Licence: not in the catalog; read the model card before use: ${modelCardUrl}`];
  return [
    `Licence: ${license.name} (${license.id}), ${license.commercialUse ? 'commercial use allowed' : 'NON-COMMERCIAL: no commercial use'}`,
    `  ${license.note}`,
    `  ${license.url}`,
  ];
}
