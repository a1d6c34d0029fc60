// The dashboard's helpers: elements built with textContent only (data is never parsed as HTML),
// the JSON API (POSTs carry the CSRF token of the page), and formatting.

/** An element: `attrs` are attributes (or `on…` listeners); children are nodes or text. */
export const h = (tag, attrs = {}, ...children) => {
  const element = document.createElement(tag)
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue
    if (name.startsWith("on") && typeof value === "function") element.addEventListener(name.slice(2), value)
    else element.setAttribute(name, value === true ? "" : String(value))
  }
  append(element, children)
  return element
}

const append = (element, children) => {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue
    element.append(child instanceof Node ? child : document.createTextNode(String(child)))
  }
}

/** Replaces the children of `element`. */
export const replace = (element, ...children) => {
  element.replaceChildren()
  append(element, children)
  return element
}

const csrfToken = () => document.querySelector('meta[name="csrf-token"]')?.getAttribute("content") ?? ""

const request = async (path, init) => {
  const response = await fetch(path, { credentials: "same-origin", ...init })
  const body = await response.json().catch(() => ({ error: { message: `HTTP ${response.status}` } }))
  if (!response.ok) throw new Error(body?.error?.message ?? `HTTP ${response.status}`)
  return body
}

/** GET a JSON route with query parameters (empty ones left out). */
export const get = (path, params = {}) => {
  const query = new URLSearchParams()
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") query.set(key, String(value))
  }
  const text = query.toString()
  return request(text === "" ? path : `${path}?${text}`)
}

/** POST a JSON body, with the page's CSRF token. */
export const post = (path, body) =>
  request(path, {
    method: "POST",
    headers: { "content-type": "application/json", "x-csrf-token": csrfToken() },
    body: JSON.stringify(body)
  })

/** A date and time, local, to the second. */
export const time = (millis) => {
  if (millis === null || millis === undefined) return "—"
  const date = new Date(millis)
  const pad = (n) => String(n).padStart(2, "0")
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
}

/** A duration: 850 ms, 2.4 s, 3 min 5 s, 2 h 4 min. */
export const duration = (millis) => {
  if (millis === null || millis === undefined) return "—"
  if (millis < 1000) return `${Math.round(millis)} ms`
  if (millis < 60_000) return `${(millis / 1000).toFixed(1)} s`
  if (millis < 3_600_000)
    return `${Math.floor(millis / 60_000)} min ${Math.round((millis % 60_000) / 1000)} s`
  return `${Math.floor(millis / 3_600_000)} h ${Math.round((millis % 3_600_000) / 60_000)} min`
}

/** A JSON value, indented, as text. */
export const pretty = (value) => (typeof value === "string" ? value : JSON.stringify(value, null, 2))

/** A status badge. */
export const badge = (status) => h("span", { class: `badge status-${status}`, "data-status": status }, status)

/** A message under the page's title: an error (red) or a notice. */
export const notice = (text, kind = "error") => h("p", { class: `notice ${kind}`, role: "status" }, text)

/** Runs `refresh` now and every `millis` while the page is open; returns the stop function. */
export const every = (millis, refresh) => {
  let stopped = false
  let timer
  const loop = async () => {
    if (stopped) return
    try {
      await refresh()
    } finally {
      if (!stopped) timer = setTimeout(loop, millis)
    }
  }
  loop()
  return () => {
    stopped = true
    clearTimeout(timer)
  }
}

/** The page's query parameters. */
export const params = () => new URLSearchParams(location.search)
