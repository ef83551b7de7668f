import { PGlite } from "@electric-sql/pglite"
import * as PgliteClient from "../src/db/PgliteClient.ts"
import { queueSemantics } from "./suites/queueSemantics.ts"

await queueSemantics({
  name: "pglite",
  open: async () => ({ layer: PgliteClient.layer(() => PGlite.create("memory://")), close: async () => {} })
})
