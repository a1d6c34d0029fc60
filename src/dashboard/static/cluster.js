// Pods and shards: who owns what, epochs, lease ages, pending handovers. Refreshed live.
import { badge, duration, every, get, h, notice, replace, time } from "./dom.js"

const table = (headers, rows, attrs = {}) =>
  h(
    "table",
    attrs,
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        headers.map((t) => h("th", {}, t))
      )
    ),
    h("tbody", {}, rows)
  )

export const cluster = (main) => {
  const message = h("div")
  const body = h("div")
  const live = h("span", { class: "live" }, "connecting…")
  replace(main, h("div", { class: "title" }, h("h1", {}, "Pods & shards"), live), message, body)

  const render = (data) => {
    if (!data.clustered) {
      return replace(
        body,
        h(
          "p",
          { class: "empty", id: "not-clustered" },
          "This store has no pods or shards: its engine runs in one process, without cluster ownership."
        )
      )
    }
    const handovers = data.shards.filter((s) => s.nextOwner !== null)
    replace(
      body,
      h("h2", {}, `Pods (${data.pods.length})`),
      table(
        ["Pod", "Liveness", "Shards", "Manager", "Registered", "Last renewal", "Lease age", "Lease until"],
        data.pods.map((p) =>
          h(
            "tr",
            { "data-pod": p.podId },
            h("td", { class: "id" }, p.podId),
            h("td", {}, badge(p.liveness)),
            h("td", {}, p.shardCount),
            h("td", {}, p.manager ? "yes" : ""),
            h("td", { class: "time" }, time(p.registeredAt)),
            h("td", { class: "time" }, time(p.renewedAt)),
            h("td", {}, duration(p.leaseAgeMillis)),
            h("td", { class: "time" }, time(p.leaseUntil))
          )
        ),
        { id: "pods" }
      ),
      h("h2", {}, `Pending handovers (${handovers.length})`),
      handovers.length === 0
        ? h("p", { class: "muted" }, "None: no shard is moving.")
        : table(
            ["Shard", "From", "To", "Epoch"],
            handovers.map((s) =>
              h(
                "tr",
                {},
                h("td", {}, s.shard),
                h("td", { class: "id" }, s.owner ?? "—"),
                h("td", { class: "id" }, s.nextOwner),
                h("td", {}, s.epoch)
              )
            )
          ),
      h("h2", {}, `Shards (${data.shards.length})`),
      table(
        ["Shard", "Owner", "Epoch", "Handover to", "Updated"],
        data.shards.map((s) =>
          h(
            "tr",
            { "data-shard": s.shard },
            h("td", {}, s.shard),
            h("td", { class: "id" }, s.owner ?? "unowned"),
            h("td", {}, s.epoch),
            h("td", { class: "id" }, s.nextOwner ?? ""),
            h("td", { class: "time" }, time(s.updatedAt))
          )
        ),
        { id: "shards" }
      )
    )
  }

  every(2000, async () => {
    try {
      render(await get("/api/cluster"))
      replace(message)
      replace(live, `live · updated ${time(Date.now()).slice(11)}`)
    } catch (error) {
      replace(message, notice(error.message))
      replace(live, "offline")
    }
  })
}
