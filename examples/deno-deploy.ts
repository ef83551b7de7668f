/**
 * The HTTP API mounted on `Deno.serve`, the way Deno Deploy runs it: net and env permissions only, no file
 * system. Locally:
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres deno run --allow-net --allow-env examples/deno-deploy.ts
 *
 * In your own project import from the package instead (`npm:effect-pg-queue`, `npm:effect-pg-queue/api`, or
 * the bare names with a package.json), and list your own kinds: a Deploy project cannot read JOBS_MODULE
 * from disk. Migrate from somewhere with a file system first (the migrate program, or `Migrator.migrate()`
 * in a deploy step). Tested by test/runtimes-smoke.test.ts.
 */
import { Layer } from "effect"
import { ApiConfig, apiLayer, makeWebHandler } from "../src/http/index.ts"
import { Database, DatabaseConfig, DemoKinds } from "../src/index.ts"

/** The part of Deno's API this example uses (the project is type-checked with Bun's types). */
declare const Deno: {
  readonly env: { get(name: string): string | undefined }
  serve(options: { port: number }, handler: (request: Request) => Promise<Response>): unknown
}

const url = Deno.env.get("DATABASE_URL")
if (url === undefined) throw new Error("set DATABASE_URL")

const { handler } = makeWebHandler(
  apiLayer(DemoKinds.demoKinds).pipe(
    // pipelined statements and bounded statement times, as `npm run api` has them
    Layer.provide(Database.layerUrl(url, { maxConnections: 5, ...DatabaseConfig.apiDefaults })),
    Layer.provide(ApiConfig.layer({ tokens: [] }))
  )
)

// Deno Deploy picks the port itself; PORT is for running it locally
Deno.serve({ port: Number(Deno.env.get("PORT") ?? 8000) }, handler)
