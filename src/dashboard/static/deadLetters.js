// Dead letters: the messages an entity gave up on, with their errors; each can be replayed.
import { get, h, notice, post, replace, time } from "./dom.js"

/** The first line of an error in full; the rest (a stack) folded. */
const errorCell = (error) => {
  const cut = error.search(/\n| at /)
  if (cut === -1) return h("span", { class: "error-summary" }, error)
  return [
    h("span", { class: "error-summary" }, error.slice(0, cut)),
    h("details", {}, h("summary", {}, "details"), h("pre", { class: "json" }, error.slice(cut).trim()))
  ]
}

export const deadLetters = (main) => {
  const message = h("div", { id: "message" })
  const body = h("div", { id: "dead-letters" })
  const pager = h("div", { class: "pager" })
  replace(main, h("h1", {}, "Dead letters"), message, body, pager)
  const cursors = []
  let cursor = ""
  let next = null

  const replay = async (letter) => {
    if (!window.confirm(`Replay message ${letter.messageId} to ${letter.entityType} ${letter.entityId}?`))
      return
    try {
      await post("/api/dead-letters/replay", { key: letter.key })
      replace(message, notice(`Replayed ${letter.messageId}: it is pending again.`, "ok"))
      await load()
    } catch (error) {
      replace(message, notice(error.message))
    }
  }

  const load = async () => {
    try {
      const data = await get("/api/dead-letters", { cursor, limit: 50 })
      next = data.next
      if (data.deadLetters.length === 0) replace(body, h("p", { class: "empty" }, "No dead letters."))
      else
        replace(
          body,
          h(
            "table",
            {},
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                ["Entity", "Message", "Shard", "Error", "Payload", "Dead since", ""].map((t) =>
                  h("th", {}, t)
                )
              )
            ),
            h(
              "tbody",
              {},
              data.deadLetters.map((d) =>
                h(
                  "tr",
                  { "data-message-id": d.messageId },
                  h(
                    "td",
                    { class: "entity" },
                    h("span", { class: "muted" }, d.entityType),
                    h("br"),
                    h("span", { class: "id" }, d.entityId)
                  ),
                  h("td", { class: "id" }, d.messageId),
                  h("td", {}, d.shard),
                  h("td", {}, errorCell(d.error)),
                  h("td", { class: "value" }, JSON.stringify(d.payload)),
                  h("td", { class: "time" }, time(d.deadAt)),
                  h("td", {}, h("button", { class: "secondary", onclick: () => replay(d) }, "Replay"))
                )
              )
            )
          )
        )
      replace(
        pager,
        h(
          "button",
          {
            class: "secondary",
            disabled: cursors.length === 0,
            onclick: () => {
              cursor = cursors.pop() ?? ""
              load()
            }
          },
          "← Previous"
        ),
        h(
          "button",
          {
            class: "secondary",
            disabled: next === null,
            onclick: () => {
              cursors.push(cursor)
              cursor = next
              load()
            }
          },
          "Next →"
        )
      )
    } catch (error) {
      replace(body, notice(error.message))
    }
  }
  load()
}
