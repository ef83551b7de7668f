/**
 * The routes the server answers, as method + template. Used where the router has not (or could not)
 * match: the route label of a request's metrics (the template, never the raw path, so labels stay
 * bounded) and the `Allow` list of a 405.
 *
 * It also decides which paths exist: a request whose path matches no template is answered 404 before it
 * reaches the router (`Routes`), so routing and the metrics' route label cannot disagree. Effect's router
 * on its own matched paths case-insensitively and took `/jobs//` for `/jobs/:id` with an empty id, while
 * the label said `unmatched`. The rule: paths are case-sensitive, one trailing slash is ignored, no
 * segment is empty.
 */
export interface Route {
  readonly method: string
  /** The router's template, e.g. `/jobs/:id`. */
  readonly path: string
}

export type Match =
  | { readonly _tag: "Matched"; readonly route: string }
  | { readonly _tag: "WrongMethod"; readonly route: string; readonly allowed: ReadonlyArray<string> }
  | { readonly _tag: "Unknown" }

/** One request's path and what the table makes of it, worked out once per request. */
export interface Resolved {
  readonly method: string
  readonly pathname: string
  readonly match: Match
}

const toPattern = (template: string) =>
  new RegExp(
    `^${template
      .split("/")
      .map((segment) => (segment.startsWith(":") ? "[^/]+" : segment.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")))
      .join("/")}/?$`
  )

/** Every endpoint of an HttpApi, as routes. */
export const fromApi = (api: {
  readonly groups: Readonly<Record<string, { readonly endpoints: Readonly<Record<string, Route>> }>>
}): ReadonlyArray<Route> =>
  Object.values(api.groups).flatMap((group) =>
    Object.values(group.endpoints).map((endpoint) => ({ method: endpoint.method, path: endpoint.path }))
  )

export const make = (routes: ReadonlyArray<Route>): ((method: string, pathname: string) => Match) => {
  const templates = new Map<string, { readonly pattern: RegExp; readonly methods: Set<string> }>()
  for (const route of routes) {
    const entry = templates.get(route.path) ?? { pattern: toPattern(route.path), methods: new Set<string>() }
    entry.methods.add(route.method)
    if (route.method === "GET") entry.methods.add("HEAD")
    templates.set(route.path, entry)
  }
  // literal segments before parameters: `/jobs/batch` wins over `/jobs/:id`
  const ordered = [...templates].sort(([a], [b]) => a.split(":").length - b.split(":").length)

  return (method: string, pathname: string): Match => {
    let wrongMethod: { route: string; allowed: Array<string> } | undefined
    for (const [template, { pattern, methods }] of ordered) {
      if (!pattern.test(pathname)) continue
      if (methods.has(method)) return { _tag: "Matched", route: template }
      wrongMethod ??= { route: template, allowed: [...methods] }
    }
    return wrongMethod === undefined ? { _tag: "Unknown" } : { _tag: "WrongMethod", ...wrongMethod }
  }
}
