/**
 * The dashboard in a real headless Chromium (test/support/Chromium.ts: the build @sparticuz/chromium
 * ships, else Debian's /usr/bin/chromium; the test fails saying how to get one if neither starts).
 * It runs on a real SQLite store written by a real engine and pod, loads every page, resumes a
 * suspended execution through its button (confirming the dialog) and sees it finish, sees a new
 * execution appear without a reload, and checks that `<script>` in an id and a payload is shown
 * as text and never runs. Screenshots go to .data/screenshots/ (git-ignored).
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { Effect } from "effect"
import type { Browser, Page } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { launchChromium } from "../support/Chromium.ts"
import { awaitStatus, Job, makeStore, POD_ID, type Pod, SCRIPT_ID, SHARDS } from "./fixture.ts"
import { type Running, startDashboard } from "./support.ts"

const SCREENSHOTS = resolve(".data", "screenshots")

describe("the dashboard in headless Chromium", () => {
  const folder = mkdtempSync(join(tmpdir(), "dashboard-browser-"))
  let pod: Pod
  let dashboard: Running
  let browser: Browser
  let page: Page
  const dialogs: Array<string> = []
  const pageErrors: Array<string> = []

  beforeAll(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true })
    const store = await makeStore(folder)
    pod = store.pod
    dashboard = await startDashboard(store.file)
    const chromium = await launchChromium()
    console.log(`browser: ${chromium.source}`)
    browser = chromium.browser
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
    page.on("dialog", (dialog) => {
      dialogs.push(`${dialog.type()}: ${dialog.message()}`)
      void (dialog.type() === "confirm" ? dialog.accept() : dialog.dismiss())
    })
    page.on("pageerror", (error) => pageErrors.push(String(error)))
  }, 120_000)

  afterAll(async () => {
    await browser?.close()
    await dashboard?.stop()
    await pod?.stop()
    rmSync(folder, { recursive: true, force: true })
  })

  const shot = (name: string) => page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true })
  const row = (executionId: string) =>
    page.locator(`tr[data-execution-id="${executionId.replace(/["\\]/g, "\\$&")}"]`)

  it("lists the executions with counts by status, and a new one appears without a reload", async () => {
    await page.goto(dashboard.url)
    await expect.poll(() => page.locator("#executions tbody tr").count()).toBe(6)
    expect(await page.locator('[data-count="suspended"]').textContent()).toBe("1")
    expect(await page.locator('[data-count="sleeping"]').textContent()).toBe("2")
    expect(await page.locator('[data-count="total"]').textContent()).toBe("6")
    expect(await row("job-fail-1").locator(".badge").textContent()).toBe("failed")
    // The id with markup is a link whose text is the id itself.
    expect(await row(`job-${SCRIPT_ID}`).locator("a").textContent()).toBe(`job-${SCRIPT_ID}`)
    await shot("executions")

    await Effect.runPromise(
      Effect.flatMap(pod.engine.sendDiscard(new Job({ id: "live-1", kind: "ok", note: "live" })), (id) =>
        awaitStatus(pod.engine, id, "succeeded")
      )
    )
    await expect.poll(() => row("job-live-1").count(), { timeout: 10_000 }).toBe(1)
    expect(await page.locator('[data-count="total"]').textContent()).toBe("7")

    // A filter: only the failed one.
    await page.locator('select[name="status"]').selectOption("failed")
    await page.locator('form.filters button[type="submit"]').click()
    await expect.poll(() => page.locator("#executions tbody tr").count()).toBe(1)
    expect(page.url()).toContain("status=failed")
  })

  it("draws an execution's attempts to scale, with its retry, and shows a failure's error and cause", async () => {
    await page.goto(`${dashboard.url}execution?id=job-ok-1`)
    const lane = page.locator('.lane:has(.lane-name:text-is("flaky"))')
    await expect.poll(() => lane.locator(".bar").count()).toBe(2)
    expect(await lane.locator(".bar.outcome-retried").count()).toBe(1)
    expect(await lane.locator(".bar.outcome-succeeded").count()).toBe(1)
    expect(await lane.locator(".retries").textContent()).toBe("2 attempts")
    // Drawn to scale: the retried attempt starts before, and ends before, the one that succeeded.
    const [first, second] = await lane
      .locator(".bar")
      .evaluateAll((bars) => bars.map((bar) => bar.getBoundingClientRect()).map((r) => [r.left, r.right]))
    expect(first![0]).toBeLessThan(second![0]!)
    expect(first![1]).toBeLessThanOrEqual(second![0]! + 1)
    expect(await page.locator("#journal tbody tr").count()).toBeGreaterThanOrEqual(3)
    // The step's last heartbeat, under its latest attempt.
    const heartbeat = page.locator('#journal tr:has(td.id:text-is("prepare")) .heartbeat')
    expect(await heartbeat.textContent()).toContain('"checked": 3')
    expect(await page.locator("#result").textContent()).toContain("done ok-1 after 2 attempts")
    await shot("execution-succeeded")

    await page.goto(`${dashboard.url}execution?id=job-fail-1`)
    await page.locator("#error").waitFor()
    expect(await page.locator("#error .error-summary").textContent()).toContain("card declined")
    expect(await page.locator("#error pre").textContent()).toContain("JobFailed")
    await shot("execution-failed")
  })

  it("resumes a suspended execution from its button, after a confirmation, and sees it finish", async () => {
    await page.goto(`${dashboard.url}execution?id=job-suspend-1`)
    await expect.poll(() => page.locator(".summary .badge").textContent()).toBe("suspended")
    const reason = await page.locator(".suspension-message").textContent()
    expect(reason).toContain("needs an operator's review")
    expect(reason).not.toMatch(/^(\w+): \1:/)
    await shot("execution-suspended")
    await page.locator("#resume").click()
    await expect.poll(() => page.locator("#message").textContent()).toContain("Resumed")
    expect(dialogs.at(-1)).toBe("confirm: Resume execution job-suspend-1?")
    // The pod's engine picks it up: its review activity's second attempt approves.
    await expect
      .poll(() => page.locator(".summary .badge").textContent(), { timeout: 20_000 })
      .toBe("succeeded")
    expect(await page.locator("#result").textContent()).toContain("approved")
    expect(await page.locator("#resume").isDisabled()).toBe(true)
    await shot("execution-resumed")
  })

  it("shows an id and a payload with <script> as text, and nothing runs", async () => {
    await page.goto(`${dashboard.url}execution?id=${encodeURIComponent(`job-${SCRIPT_ID}`)}`)
    await expect.poll(() => page.locator(".summary .badge").textContent()).toBe("succeeded")
    expect(await page.locator("#execution-id").textContent()).toBe(`job-${SCRIPT_ID}`)
    expect(JSON.parse((await page.locator("#request").textContent()) ?? "").note).toBe(`note of ${SCRIPT_ID}`)
    expect(await page.locator("main script, main img").count()).toBe(0)
    expect(await page.evaluate(() => (globalThis as any).__pwned)).toBeUndefined()
    await shot("execution-script-id")
  })

  it("shows the pods and shards, an entity, and the dead letters (and replays one)", async () => {
    await page.goto(`${dashboard.url}cluster`)
    await page.locator(`#pods tr[data-pod="${POD_ID}"]`).waitFor()
    expect(await page.locator(`#pods tr[data-pod="${POD_ID}"] .badge`).textContent()).toBe("live")
    expect(await page.locator("#shards tbody tr").count()).toBe(SHARDS)
    expect(await page.locator("#shards tbody tr td:nth-child(2)").allTextContents()).toEqual(
      Array.from({ length: SHARDS }, () => POD_ID)
    )
    await shot("cluster")

    await page.goto(`${dashboard.url}entities?type=Mailbox&id=inbox-1`)
    await page.locator("#pending").waitFor()
    expect(await page.locator("#pending tbody tr td:nth-child(2)").allTextContents()).toEqual([
      "m-1",
      `m-${SCRIPT_ID}`
    ])
    await page.locator('input[name="type"]').fill("Account")
    await page.locator('input[name="id"]').fill("alice")
    await page.locator('form.filters button[type="submit"]').click()
    await expect.poll(() => page.locator("#entity-state").textContent()).toBe("15")
    await shot("entity")

    await page.goto(`${dashboard.url}dead-letters`)
    const letter = page.locator('tr[data-message-id="d-bad"]')
    await letter.waitFor()
    expect(await letter.textContent()).toContain("negative deposit -1")
    await shot("dead-letters")
    await letter.locator("button").click()
    await expect.poll(() => page.locator("#message").textContent()).toContain("Replayed d-bad")
    expect(dialogs.at(-1)).toBe("confirm: Replay message d-bad to Account alice?")
    expect(await page.evaluate(() => (globalThis as any).__pwned)).toBeUndefined()
    expect(dialogs.filter((d) => !d.startsWith("confirm:"))).toEqual([])
    expect(pageErrors).toEqual([])
  })
})
