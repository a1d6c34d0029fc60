import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { describe, expect, it } from "vitest"
import { launchChromium, launchFirst } from "./Chromium.ts"

describe("Chromium", () => {
  it("starts headless Chromium without downloading it, and it loads and clicks a localhost page", async () => {
    const server = createServer((_, response) => {
      response.setHeader("content-type", "text/html; charset=utf-8")
      response.end(
        `<h1>before</h1><button onclick="document.querySelector('h1').textContent = 'after'">go</button>`
      )
    })
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    const { browser, source } = await launchChromium()
    try {
      expect(source).toMatch(/chromium/i)
      const page = await browser.newPage()
      await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`)
      await page.click("button")
      expect(await page.textContent("h1")).toBe("after")
      expect((await page.screenshot()).length).toBeGreaterThan(1000)
    } finally {
      await browser.close()
      server.close()
    }
  })

  it("fails, saying how to install one, when no Chromium starts", async () => {
    const attempt = launchFirst([
      { failure: "@sparticuz/chromium: not installed" },
      { source: "/usr/bin/chromium", executablePath: "/nonexistent/chromium", env: {} }
    ])
    await expect(attempt).rejects.toThrow(
      /npm install[\s\S]*apt-get install chromium[\s\S]*\/usr\/bin\/chromium: /
    )
  })
})
