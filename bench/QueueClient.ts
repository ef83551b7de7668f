/** The library's enqueue side in the harness process: `Queue` over its own pool, with the bench kinds. */
import { Layer, ManagedRuntime } from "effect"
import * as Database from "../src/db/Database.ts"
import * as QueueLayer from "../src/queue/layer.ts"
import { kinds } from "./BenchKinds.ts"

export const make = (url: string, maxConnections = 10) =>
  ManagedRuntime.make(
    QueueLayer.layer(kinds).pipe(
      Layer.provideMerge(Database.layerUrl(url, { maxConnections, applicationName: "jobq-bench" }))
    )
  )
