/**
 * Routing by the URL's fragment (`#/jobs?status=failed_permanent`): the server serves one shell at
 * `<prefix>/ui/` whatever the view, so no server route and no base path are needed, and a link to a
 * filtered view reproduces it.
 */
import { useEffect, useState } from "preact/hooks"

export interface Route {
  readonly path: string
  readonly params: URLSearchParams
}

const current = (): Route => {
  const hash = location.hash.replace(/^#/, "") || "/"
  const [path = "/", query = ""] = hash.split("?", 2)
  return { path, params: new URLSearchParams(query) }
}

export const useRoute = (): Route => {
  const [route, setRoute] = useState(current)
  useEffect(() => {
    const update = () => setRoute(current())
    addEventListener("hashchange", update)
    return () => removeEventListener("hashchange", update)
  }, [])
  return route
}

/** The fragment link for a view with its parameters (empty values left out). */
export const href = (path: string, params: Record<string, string | undefined> = {}) => {
  const query = new URLSearchParams()
  for (const [key, value] of Object.entries(params))
    if (value !== undefined && value !== "") query.set(key, value)
  const text = query.toString()
  return `#${path}${text === "" ? "" : `?${text}`}`
}

export const navigate = (path: string, params: Record<string, string | undefined> = {}) => {
  location.hash = href(path, params)
}
