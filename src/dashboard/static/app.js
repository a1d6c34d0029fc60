// The dashboard's entry: picks the view of the page from its path.
import { cluster } from "./cluster.js"
import { deadLetters } from "./deadLetters.js"
import { h, replace } from "./dom.js"
import { entities } from "./entities.js"
import { execution } from "./execution.js"
import { executions } from "./executions.js"

const views = {
  "/": ["executions", executions],
  "/execution": ["executions", execution],
  "/cluster": ["cluster", cluster],
  "/entities": ["entities", entities],
  "/dead-letters": ["dead-letters", deadLetters]
}

const main = document.getElementById("main")
const [nav, view] = views[location.pathname] ?? [undefined, undefined]
for (const link of document.querySelectorAll("[data-nav]")) {
  if (link.getAttribute("data-nav") === nav) link.setAttribute("aria-current", "page")
}
if (view === undefined) replace(main, h("h1", {}, "Not found"))
else view(main)
