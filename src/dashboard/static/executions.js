// The executions page: counts by status, filters, pages (Admin's cursor), refreshed live.
import { badge, every, get, h, notice, params, replace, time } from "./dom.js"

const STATUSES = ["running", "suspended", "sleeping", "succeeded", "failed", "interrupted"]
const REFRESH_MILLIS = 2000

/** `datetime-local` value ↔ ISO time. */
const toIso = (local) => (local === "" ? "" : new Date(local).toISOString())
const toLocal = (iso) => {
  if (!iso) return ""
  const date = new Date(Number.isNaN(Number(iso)) ? iso : Number(iso))
  if (Number.isNaN(date.getTime())) return ""
  const pad = (n) => String(n).padStart(2, "0")
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`
}

export const executions = (main) => {
  const query = params()
  const filters = {
    workflow: query.get("workflow") ?? "",
    status: query.get("status") ?? "",
    since: query.get("since") ?? ""
  }
  // The cursors of the pages before this one (the first page's is "").
  const cursors = []
  let cursor = ""
  let next = null

  const workflow = h("input", { name: "workflow", placeholder: "any workflow", value: filters.workflow })
  const status = h(
    "select",
    { name: "status" },
    h("option", { value: "" }, "any status"),
    STATUSES.map((s) => h("option", { value: s, selected: s === filters.status }, s))
  )
  const since = h("input", { name: "since", type: "datetime-local", value: toLocal(filters.since) })
  const form = h(
    "form",
    { class: "filters", onsubmit: (event) => apply(event) },
    h("label", {}, "Workflow ", workflow),
    h("label", {}, "Status ", status),
    h("label", {}, "Created since ", since),
    h("button", { type: "submit" }, "Apply"),
    h("button", { type: "button", class: "secondary", onclick: () => clear() }, "Clear")
  )
  const counts = h("div", { class: "counts", id: "counts" })
  const live = h("span", { class: "live", id: "live" }, "connecting…")
  const message = h("div")
  const table = h("div", { id: "executions" })
  const pager = h("div", { class: "pager" })
  replace(
    main,
    h("div", { class: "title" }, h("h1", {}, "Executions"), live),
    counts,
    form,
    message,
    table,
    pager
  )

  const apply = (event) => {
    event?.preventDefault()
    filters.workflow = workflow.value.trim()
    filters.status = status.value
    filters.since = toIso(since.value)
    const search = new URLSearchParams()
    for (const [key, value] of Object.entries(filters)) if (value !== "") search.set(key, value)
    history.replaceState(null, "", search.toString() === "" ? "/" : `/?${search}`)
    cursors.length = 0
    cursor = ""
    refresh()
  }
  const clear = () => {
    workflow.value = ""
    status.value = ""
    since.value = ""
    apply()
  }

  const renderCounts = (data) =>
    replace(
      counts,
      h(
        "button",
        {
          class: `count${filters.status === "" ? " selected" : ""}`,
          onclick: () => {
            status.value = ""
            apply()
          }
        },
        h("span", { class: "count-label" }, "all"),
        h("span", { class: "count-value", "data-count": "total" }, data.total)
      ),
      STATUSES.map((s) =>
        h(
          "button",
          {
            class: `count status-${s}${filters.status === s ? " selected" : ""}`,
            onclick: () => {
              status.value = s
              apply()
            }
          },
          h("span", { class: "count-label" }, s),
          h("span", { class: "count-value", "data-count": s }, data.byStatus[s] ?? 0)
        )
      )
    )

  const renderTable = (rows) => {
    if (rows.length === 0) return replace(table, h("p", { class: "empty" }, "No executions match."))
    replace(
      table,
      h(
        "table",
        {},
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            h("th", {}, "Execution"),
            h("th", {}, "Workflow"),
            h("th", {}, "Status"),
            h("th", {}, "Created"),
            h("th", {}, "Updated")
          )
        ),
        h(
          "tbody",
          {},
          rows.map((row) =>
            h(
              "tr",
              { "data-execution-id": row.executionId },
              h(
                "td",
                { class: "id" },
                h("a", { href: `/execution?id=${encodeURIComponent(row.executionId)}` }, row.executionId)
              ),
              h("td", {}, row.workflow),
              h("td", {}, badge(row.status)),
              h("td", { class: "time" }, time(row.createdAt)),
              h("td", { class: "time" }, time(row.updatedAt))
            )
          )
        )
      )
    )
  }

  const renderPager = () =>
    replace(
      pager,
      h(
        "button",
        {
          class: "secondary",
          disabled: cursors.length === 0,
          onclick: () => {
            cursor = cursors.pop() ?? ""
            refresh()
          }
        },
        "← Newer"
      ),
      h("span", { class: "muted" }, `Page ${cursors.length + 1}`),
      h(
        "button",
        {
          class: "secondary",
          disabled: next === null,
          onclick: () => {
            cursors.push(cursor)
            cursor = next
            refresh()
          }
        },
        "Older →"
      )
    )

  const refresh = async () => {
    try {
      const data = await get("/api/executions", { ...filters, cursor, limit: 25 })
      next = data.next
      renderCounts(data.counts)
      renderTable(data.executions)
      renderPager()
      replace(message)
      replace(live, `live · updated ${time(Date.now()).slice(11)}`)
    } catch (error) {
      replace(message, notice(error.message))
      replace(live, "offline")
    }
  }
  every(REFRESH_MILLIS, refresh)
}
