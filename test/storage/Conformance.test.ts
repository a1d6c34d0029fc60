/** The same journal contract on every backend: memory, the embedded SQLite store and PostgreSQL. */
import { backends } from "./backends.ts"
import { conformance } from "./conformance.ts"
import { entities } from "./entities.ts"
import { ownership } from "./ownership.ts"

for (const backend of backends) {
  conformance(backend)
  ownership(backend)
  entities(backend)
}
