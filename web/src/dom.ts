/**
 * Small DOM helpers the views share, and the page-wide messages: the alert
 * (role=alert, for what went wrong) and the notice (role=status, for what was
 * done). Both belong to the page, not to a view; every navigation clears them.
 */

export function byId<T extends HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (!element) throw new Error(`#${id} is missing from the page`);
  return element as T;
}

export function showAlert(message: string): void {
  const alert = byId('alert');
  alert.textContent = message;
  alert.hidden = false;
}

export function notify(message: string): void {
  byId('notice').textContent = message;
}

export function clearMessages(): void {
  const alert = byId('alert');
  alert.hidden = true;
  alert.textContent = '';
  byId('notice').textContent = '';
}

/** A date and time in the reader's locale, e.g. "30 Nov 2026, 14:05". */
export function formatDate(iso: string): string {
  return new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}
