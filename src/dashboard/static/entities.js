// An entity, looked up by type and id: its stored state and its pending messages.
import { get, h, notice, params, pretty, replace, time } from "./dom.js"

export const entities = (main) => {
  const query = params()
  const type = h("input", {
    name: "type",
    placeholder: "entity type",
    required: true,
    value: query.get("type") ?? ""
  })
  const id = h("input", {
    name: "id",
    placeholder: "entity id",
    required: true,
    value: query.get("id") ?? ""
  })
  const result = h("div", { id: "entity" })
  const lookup = async (event) => {
    event?.preventDefault()
    const search = new URLSearchParams({ type: type.value, id: id.value })
    history.replaceState(null, "", `/entities?${search}`)
    try {
      const entity = await get("/api/entity", { type: type.value, id: id.value })
      replace(
        result,
        h("h2", {}, "State"),
        entity.state === null
          ? h("p", { class: "muted" }, "No state stored.")
          : h("pre", { class: "json", id: "entity-state" }, pretty(entity.state)),
        h("h2", {}, `Pending messages (${entity.pending.length})`),
        entity.pending.length === 0
          ? h("p", { class: "muted" }, "None.")
          : h(
              "table",
              { id: "pending" },
              h(
                "thead",
                {},
                h(
                  "tr",
                  {},
                  ["Seq", "Message", "Created", "Payload"].map((t) => h("th", {}, t))
                )
              ),
              h(
                "tbody",
                {},
                entity.pending.map((m) =>
                  h(
                    "tr",
                    {},
                    h("td", {}, m.seq),
                    h("td", { class: "id" }, m.messageId),
                    h("td", { class: "time" }, time(m.createdAt)),
                    h("td", { class: "value" }, pretty(m.payload))
                  )
                )
              )
            )
      )
    } catch (error) {
      replace(result, notice(error.message))
    }
  }
  replace(
    main,
    h("h1", {}, "Entities"),
    h(
      "form",
      { class: "filters", onsubmit: lookup },
      h("label", {}, "Type ", type),
      h("label", {}, "Id ", id),
      h("button", { type: "submit" }, "Look up")
    ),
    result
  )
  if (type.value !== "" && id.value !== "") lookup()
}
