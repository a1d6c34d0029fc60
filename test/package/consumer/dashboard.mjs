// The dashboard from the installed package, programmatically: Dashboard.layer over Admin.layerFile
// on the SQLite store workflow.mjs left, on a free port; prints what a page, a script and an API
// route answered, then stops. Usage: node dashboard.mjs <store file>
import { Context, Effect, Layer } from "effect"
import { Admin } from "effect-cluster"
import { Dashboard } from "effect-cluster/dashboard"

const [file] = process.argv.slice(2)

const program = Effect.scoped(
  Effect.gen(function* () {
    const context = yield* Layer.build(
      Dashboard.layer({ port: 0 }).pipe(Layer.provide(Admin.layerFile(file)))
    )
    const { url } = Context.get(context, Dashboard.Dashboard)
    return yield* Effect.promise(async () => {
      const page = await fetch(url)
      const script = await fetch(`${url}static/app.js`)
      const api = await fetch(`${url}api/executions`)
      const body = await api.json()
      return {
        url,
        page: [page.status, page.headers.get("content-type"), (await page.text()).includes("/static/app.js")],
        script: [script.status, script.headers.get("content-type")],
        executions: body.executions.map((e) => [e.executionId, e.status]),
        total: body.counts.total
      }
    })
  })
)

Effect.runPromise(program).then(
  (result) => {
    console.log(JSON.stringify(result))
    process.exit(0)
  },
  (error) => {
    console.error(String(error))
    process.exit(1)
  }
)
