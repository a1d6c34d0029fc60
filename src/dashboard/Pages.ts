/**
 * The dashboard's pages and static files. Every page is the same HTML shell (the page's script
 * picks its view from the path); the CSRF token reaches the page in a `<meta>` tag. The static
 * files (plain ES modules and a stylesheet, no build step) are read once from `static/` next to
 * this module — `src/dashboard/static` from the sources, `dist/dashboard/static` from the package.
 */
import { readdir, readFile } from "node:fs/promises"
import { extname } from "node:path"
import { fileURLToPath } from "node:url"
import { Effect, Layer } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"
import { errorResponse } from "./Api.ts"
import { RouteNotFoundError } from "./DashboardErrors.ts"

/** The paths of the pages. */
export const PAGE_PATHS = ["/", "/execution", "/cluster", "/entities", "/dead-letters"] as const

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml"
}

/** The HTML shell of every page. `csrfToken` is hex: nothing to escape. */
export const shell = (csrfToken: string): string => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="${csrfToken}">
<title>effect-cluster dashboard</title>
<link rel="icon" href="/static/icon.svg">
<link rel="stylesheet" href="/static/style.css">
<script type="module" src="/static/app.js"></script>
</head>
<body>
<header class="top">
  <a class="brand" href="/">effect-cluster</a>
  <nav>
    <a href="/" data-nav="executions">Executions</a>
    <a href="/cluster" data-nav="cluster">Pods &amp; shards</a>
    <a href="/entities" data-nav="entities">Entities</a>
    <a href="/dead-letters" data-nav="dead-letters">Dead letters</a>
  </nav>
</header>
<main id="main"><p class="muted">Loading…</p></main>
</body>
</html>
`

/** Reads the static files (the folder next to this module). */
export const loadStatic = Effect.promise(async () => {
  const folder = fileURLToPath(new URL("./static/", import.meta.url))
  const files = new Map<string, { readonly body: Uint8Array; readonly contentType: string }>()
  for (const name of await readdir(folder)) {
    const contentType = CONTENT_TYPES[extname(name)]
    if (contentType !== undefined) files.set(name, { body: await readFile(`${folder}${name}`), contentType })
  }
  return files
})

/** The page and static routes. */
export const routes = (
  csrfToken: string,
  files: ReadonlyMap<string, { readonly body: Uint8Array; readonly contentType: string }>
) => {
  const page = HttpServerResponse.text(shell(csrfToken), { contentType: "text/html; charset=utf-8" })
  return Layer.mergeAll(
    HttpRouter.addAll(PAGE_PATHS.map((path) => HttpRouter.route("GET", path, page))),
    HttpRouter.add("GET", "/static/:file", (request) =>
      Effect.gen(function* () {
        const { file } = yield* HttpRouter.params
        const found = file === undefined ? undefined : files.get(file)
        if (found === undefined) {
          return errorResponse(
            new RouteNotFoundError({ method: request.method, path: `/static/${file ?? ""}` })
          )
        }
        return HttpServerResponse.uint8Array(found.body, { contentType: found.contentType })
      })
    ),
    HttpRouter.add("*", "/*", (request) =>
      Effect.succeed(
        errorResponse(
          new RouteNotFoundError({ method: request.method, path: new URL(request.url, "http://x").pathname })
        )
      )
    )
  )
}
