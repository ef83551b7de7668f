import * as Database from "../src/db/Database.ts"
import { queueSemantics } from "./suites/queueSemantics.ts"
import { emptyDatabase } from "./support/database.ts"

await queueSemantics({
  name: "postgres",
  open: async () => {
    const db = await emptyDatabase(import.meta.file)
    return { layer: Database.layerUrl(db.url), close: db.drop }
  }
})
