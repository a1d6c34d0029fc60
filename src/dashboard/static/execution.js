// One execution: its state, actions (resume / interrupt / signal, each confirmed), the error with
// its cause, a timeline of its attempts drawn to scale, and the journal. Refreshed live.
import { badge, duration, every, get, h, notice, params, post, pretty, replace, time } from "./dom.js"

const FINAL = ["succeeded", "failed", "interrupted"]
const REFRESH_MILLIS = 2000

const field = (label, ...value) => h("div", { class: "field" }, h("dt", {}, label), h("dd", {}, ...value))

const json = (value, attrs = {}) => h("pre", { class: "json", ...attrs }, pretty(value))

/**
 * Where each attempt is drawn: from its start to its end. An attempt whose start the journal did
 * not record is drawn from the previous event (`approx`); one cut short by a crash or a shutdown
 * (no end recorded) is drawn until the next attempt started, or until the execution's last update.
 */
const placed = (execution, steps) => {
  let previous = execution.createdAt
  return steps.map((step) => ({
    step,
    attempts: step.attempts.flatMap((a, index) => {
      const from = a.startedAt ?? previous
      const next = step.attempts[index + 1]
      const to =
        a.endedAt ??
        (a.outcome === "running"
          ? null
          : a.outcome === "cut-short" || a.outcome === "suspended"
            ? (next?.startedAt ?? execution.updatedAt)
            : from)
      previous = a.endedAt ?? from
      return from === null ? [] : [{ ...a, from, to, approx: a.startedAt === null }]
    })
  }))
}

/** The attempts drawn on one time axis: each bar starts and lasts in proportion. */
const timeline = (execution, steps) => {
  const lanes = placed(
    execution,
    steps.filter((step) => step.kind === "activity" || step.kind === "child" || step.kind === "signal")
  )
  const attempts = lanes.flatMap((lane) => lane.attempts)
  if (attempts.length === 0) return h("p", { class: "empty" }, "No activity attempt recorded yet.")
  const start = Math.min(execution.createdAt, ...attempts.map((a) => a.from))
  const end = Math.max(execution.updatedAt, ...attempts.map((a) => a.to ?? a.from), start + 1)
  const span = end - start
  const percent = (millis) => `${(((millis - start) / span) * 100).toFixed(3)}%`
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) =>
    h("span", { class: "tick", "data-left": f }, `+${duration(span * f)}`)
  )
  const rows = lanes.map(({ step, attempts }) =>
    h(
      "div",
      { class: "lane", "data-step": step.stepKey },
      h(
        "div",
        { class: "lane-label", title: step.stepKey },
        h("span", { class: "lane-name" }, step.activityId),
        step.attempts.length > 1 ? h("span", { class: "retries" }, `${step.attempts.length} attempts`) : null
      ),
      h(
        "div",
        { class: "lane-track" },
        attempts.map((a) => {
          const took =
            a.durationMillis ??
            (a.to === null || a.outcome === "cut-short" || a.outcome === "suspended" ? null : a.to - a.from)
          const bar = h(
            "div",
            {
              class: `bar outcome-${a.outcome}${a.approx ? " approx" : ""}`,
              "data-attempt": a.attempt,
              title: `attempt ${a.attempt} · ${a.outcome} · ${duration(took)}${a.approx ? " (start not recorded: drawn from the previous event)" : ""}${a.outcome === "cut-short" ? " (no outcome: the process stopped or the execution was suspended; drawn until the next attempt)" : a.outcome === "suspended" ? " (it suspended the execution; drawn until the last update)" : ""}${a.error ? ` · ${a.error.summary}` : ""}`
            },
            h(
              "span",
              { class: "bar-text" },
              a.outcome === "cut-short" || a.outcome === "suspended"
                ? `#${a.attempt} ${a.outcome === "suspended" ? "suspended" : "cut short"}`
                : `#${a.attempt} ${a.approx ? "≤ " : ""}${duration(took)}`
            )
          )
          bar.style.left = percent(a.from)
          bar.style.width = `max(3px, calc(${percent(a.to ?? end)} - ${percent(a.from)}))`
          return bar
        })
      )
    )
  )
  const axis = h(
    "div",
    { class: "axis" },
    h("div", { class: "lane-label" }),
    h("div", { class: "lane-track" }, ticks)
  )
  for (const tick of axis.querySelectorAll(".tick")) {
    const f = Number(tick.getAttribute("data-left"))
    tick.style.left = `${f * 100}%`
    if (f === 1) tick.classList.add("last")
  }
  return h(
    "div",
    { class: "timeline", id: "timeline" },
    rows,
    axis,
    h(
      "div",
      { class: "legend" },
      ["succeeded", "failed", "retried", "suspended", "cut-short", "running"].map((o) =>
        h("span", {}, h("i", { class: `swatch outcome-${o}` }), o)
      )
    )
  )
}

const journalTable = (steps) =>
  h(
    "table",
    { class: "journal", id: "journal" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["Step", "Kind", "Attempt", "Started", "Duration", "Outcome", "Value or error"].map((t) =>
          h("th", {}, t)
        )
      )
    ),
    h(
      "tbody",
      {},
      steps.flatMap((step) =>
        (step.attempts.length === 0 ? [null] : step.attempts).map((a, index) =>
          h(
            "tr",
            {},
            h("td", { class: "id" }, index === 0 ? step.activityId : ""),
            h("td", {}, index === 0 ? step.kind : ""),
            h("td", {}, a ? a.attempt : "—"),
            h("td", { class: "time" }, a ? time(a.startedAt) : "—"),
            h("td", {}, a ? duration(a.durationMillis) : "—"),
            h("td", {}, a ? h("span", { class: `outcome outcome-${a.outcome}` }, a.outcome) : "—"),
            h(
              "td",
              { class: "value" },
              a?.error
                ? a.error.summary
                : a && a.value !== null && a.value !== undefined
                  ? pretty(a.value)
                  : "",
              // The journal keeps the last heartbeat of the step: it belongs to its latest attempt.
              index === step.attempts.length - 1 && step.heartbeat !== null && step.heartbeat !== undefined
                ? h("div", { class: "heartbeat" }, `heartbeat: ${pretty(step.heartbeat)}`)
                : null
            )
          )
        )
      )
    )
  )

export const execution = (main) => {
  const id = params().get("id") ?? ""
  const message = h("div", { id: "message" })
  const body = h("div")
  replace(
    main,
    h("p", { class: "crumbs" }, h("a", { href: "/" }, "Executions"), " / execution"),
    h("h1", { class: "id", id: "execution-id" }, id),
    message,
    body
  )
  let signalName = ""
  // The last data drawn: a refresh that brings nothing new leaves the page (and what is open) alone.
  let drawn = ""
  let signalPayload = "null"

  const act = async (what, path, payload) => {
    if (!window.confirm(`${what} execution ${id}?`)) return
    try {
      const result = await post(path, { id, ...payload })
      replace(message, notice(`${what}: ${result._tag}`, "ok"))
      drawn = ""
      await refresh()
    } catch (error) {
      replace(message, notice(error.message))
    }
  }

  const actions = (execution) => {
    const final = FINAL.includes(execution.status)
    const name = h("input", {
      name: "signal-name",
      placeholder: "signal name",
      value: signalName,
      oninput: (e) => {
        signalName = e.target.value
      }
    })
    const payload = h("input", {
      name: "signal-payload",
      placeholder: "JSON payload",
      value: signalPayload,
      oninput: (e) => {
        signalPayload = e.target.value
      }
    })
    return h(
      "div",
      { class: "actions" },
      h(
        "button",
        {
          id: "resume",
          disabled: execution.status !== "suspended",
          title: "Resume a suspended execution",
          onclick: () => act("Resume", "/api/execution/resume")
        },
        "Resume"
      ),
      h(
        "button",
        {
          id: "interrupt",
          class: "danger",
          disabled: final || execution.interruptRequested,
          title: "Interrupt: its compensations run, then it is interrupted",
          onclick: () => act("Interrupt", "/api/execution/interrupt")
        },
        execution.interruptRequested && !final ? "Interrupt requested" : "Interrupt"
      ),
      h(
        "form",
        {
          class: "signal",
          onsubmit: (event) => {
            event.preventDefault()
            act(`Send signal "${signalName}" to`, "/api/execution/signal", {
              name: signalName,
              payload: signalPayload
            })
          }
        },
        name,
        payload,
        h("button", { type: "submit", id: "signal", class: "secondary", disabled: final }, "Send signal")
      )
    )
  }

  const render = (data) => {
    const e = data.execution
    const focused = document.activeElement?.name
    replace(
      body,
      h(
        "dl",
        { class: "summary" },
        field("Status", badge(e.status)),
        field("Workflow", e.workflow),
        field("Created", time(e.createdAt)),
        field("Updated", time(e.updatedAt)),
        e.wakeAt ? field("Wakes at", time(e.wakeAt)) : null
      ),
      actions(e),
      e.suspension
        ? h(
            "section",
            { class: "suspension" },
            h("h2", {}, "Suspended"),
            h(
              "p",
              { class: "suspension-message" },
              e.suspension.message.startsWith(`${e.suspension.tag}:`)
                ? e.suspension.message
                : `${e.suspension.tag}: ${e.suspension.message}`
            ),
            json(e.suspension.reason)
          )
        : null,
      e.error
        ? h(
            "section",
            { class: "error", id: "error" },
            h("h2", {}, "Error"),
            h("p", { class: "error-summary" }, e.error.summary),
            h("details", { open: true, "data-key": "cause" }, h("summary", {}, "Cause"), json(e.error.cause))
          )
        : null,
      e.status === "succeeded"
        ? h("section", {}, h("h2", {}, "Result"), json(e.result, { id: "result" }))
        : null,
      h("section", {}, h("h2", {}, "Timeline"), timeline(e, data.steps)),
      h("section", {}, h("h2", {}, "Request"), json(e.request, { id: "request" })),
      h("section", {}, h("h2", {}, "Journal"), journalTable(data.steps)),
      h(
        "details",
        { class: "export", "data-key": "export" },
        h("summary", {}, "Exported journal (JSON)"),
        json(data.journal)
      )
    )
    if (focused) body.querySelector(`[name="${focused}"]`)?.focus()
  }

  const refresh = async () => {
    try {
      const data = await get("/api/execution", { id })
      const text = JSON.stringify(data)
      if (text === drawn) return
      drawn = text
      const open = new Map(
        [...body.querySelectorAll("details[data-key]")].map((d) => [d.dataset.key, d.open])
      )
      render(data)
      for (const details of body.querySelectorAll("details[data-key]")) {
        if (open.has(details.dataset.key)) details.open = open.get(details.dataset.key)
      }
    } catch (error) {
      replace(message, notice(error.message))
    }
  }
  every(REFRESH_MILLIS, refresh)
}
