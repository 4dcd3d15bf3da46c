/**
 * Routes live in the hash so reloads and the back button work on any static host:
 *   #/session/<id>  follow a generation      #/story/<id>  read a story      #/  (or none) the form alone
 * Each route shows one view. A view gets an AbortSignal that is aborted the
 * moment another view replaces it: its requests and its progress stream stop,
 * and nothing it started paints over its successor.
 */

export type Route = { kind: 'home' } | { kind: 'session'; id: string } | { kind: 'story'; id: string };

export const HOME: Route = { kind: 'home' };

export interface ViewContext {
  /** Aborted when the reader leaves this view. */
  signal: AbortSignal;
  /** Move focus into the view (true after the reader navigated; false on page load). */
  focus: boolean;
}

/** Shows a route; a rejection after the view was left is the abort itself and is dropped. */
export type ShowRoute = (route: Route, view: ViewContext) => Promise<void>;

function parseRoute(hash: string): Route {
  const match = /^#\/(session|story)\/([^/?#]+)$/.exec(hash);
  if (!match) return HOME;
  return { kind: match[1] as 'session' | 'story', id: decodeURIComponent(match[2]) };
}

export function routeHash(route: Route): string {
  return route.kind === 'home' ? '#/' : `#/${route.kind}/${encodeURIComponent(route.id)}`;
}

let show: ShowRoute | null = null;
let current: AbortController | null = null;

function enter(focus: boolean): void {
  if (!show) throw new Error('startRouter() has not run yet');
  current?.abort(new DOMException('The reader left this view.', 'AbortError'));
  const controller = new AbortController();
  current = controller;
  const { signal } = controller;
  show(parseRoute(location.hash), { signal, focus }).catch((error: unknown) => {
    if (!signal.aborted) throw error;
  });
}

/** Shows the current route now and on every hash change. */
export function startRouter(showRoute: ShowRoute): void {
  show = showRoute;
  window.addEventListener('hashchange', () => enter(true));
  enter(false);
}

/** Goes to a route as a new history entry (or re-shows it when already there). */
export function navigate(route: Route, { focus }: { focus: boolean }): void {
  const hash = routeHash(route);
  if (location.hash !== hash) history.pushState(null, '', hash);
  enter(focus);
}

/** Makes the address name a route without showing it again (the view on screen already does). */
export function replaceRoute(route: Route): void {
  history.replaceState(null, '', routeHash(route));
}
