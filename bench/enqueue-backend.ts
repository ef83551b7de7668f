/**
 * The database's side of a bulk enqueue, with no client at all: inside one backend, a PL/pgSQL loop inserts
 * 20 batches of 1,000 no-op jobs with our `Queue.enqueueMany` statement (a batch without idempotency keys:
 * `INSERT ... SELECT FROM unnest(...)`, ids made before the clock as the client makes them) and with
 * graphile-worker's `add_jobs` (its specs as one JSON document, as its `addJobs` sends them), timing only
 * the statements (`clock_timestamp()`), each on a fresh database and an emptied table, alternating,
 * ENQUEUE_BACKEND_ROUNDS rounds (default 5). Microseconds a job. What the client adds on top (preparing the
 * rows, encoding the statement) is `bun bench/enqueue-cpu.ts`.
 *
 *   bun bench/enqueue-backend.ts
 */
import { SQL } from "bun"
import * as BenchDatabase from "./BenchDatabase.ts"
import { benchDirectory, ensureInstalled, nodeBinary } from "./BenchDependencies.ts"
import { summarize } from "./Stats.ts"

const rounds = Number(process.env.ENQUEUE_BACKEND_ROUNDS ?? 5)

const ours = `
CREATE FUNCTION bench_enqueue(batches int) RETURNS double precision LANGUAGE plpgsql AS $f$
DECLARE t0 timestamptz; total double precision := 0; ids uuid[]; added bigint;
BEGIN
  FOR i IN 1..batches LOOP
    SELECT array_agg(jobq_uuidv7()) INTO ids FROM generate_series(1, 1000);
    t0 := clock_timestamp();
    WITH inserted AS (
      INSERT INTO jobs AS j (id, queue, kind, payload, priority, max_attempts, run_at,
                             idempotency_key, request_hash, trace_context)
      SELECT x.id, x.queue, x.kind, x.payload, x.priority, x.max_attempts,
             coalesce(x.run_at, now() + coalesce(x.delay_ms, 0) * interval '1 millisecond'),
             x.idempotency_key, x.request_hash, x.trace_context
      FROM unnest(ids, array_fill('default'::text, ARRAY[1000]), array_fill('noop'::text, ARRAY[1000]),
                  array_fill('{}'::jsonb, ARRAY[1000]), array_fill(0::smallint, ARRAY[1000]),
                  array_fill(25, ARRAY[1000]), '{}'::timestamptz[], '{}'::bigint[], '{}'::text[], '{}'::text[],
                  '{}'::jsonb[])
        AS x (id, queue, kind, payload, priority, max_attempts, run_at, delay_ms, idempotency_key,
              request_hash, trace_context)
      RETURNING 1
    )
    SELECT count(*) INTO added FROM inserted;
    total := total + extract(epoch FROM clock_timestamp() - t0);
  END LOOP;
  RETURN total * 1e6 / (batches * 1000);
END $f$`

const graphile = `
CREATE FUNCTION bench_enqueue(batches int) RETURNS double precision LANGUAGE plpgsql AS $f$
DECLARE t0 timestamptz; total double precision := 0; specs json; added bigint;
BEGIN
  FOR i IN 1..batches LOOP
    SELECT json_agg(json_build_object('identifier', 'noop', 'payload', '{}'::json)) INTO specs
    FROM generate_series(1, 1000);
    t0 := clock_timestamp();
    SELECT count(*) INTO added
    FROM graphile_worker.add_jobs(array(SELECT json_populate_recordset(null::graphile_worker.job_spec, specs)), false);
    total := total + extract(epoch FROM clock_timestamp() - t0);
  END LOOP;
  RETURN total * 1e6 / (batches * 1000);
END $f$`

await ensureInstalled()
const oursDb = await BenchDatabase.create("enqbackend")
const graphileDb = await BenchDatabase.create("enqbackend_gw", "empty")
try {
  const migrate = Bun.spawn(
    [
      nodeBinary,
      "--input-type=module",
      "-e",
      `import { makeWorkerUtils } from "graphile-worker"
       const utils = await makeWorkerUtils({ connectionString: ${JSON.stringify(graphileDb.url)} })
       await utils.migrate(); await utils.release()`
    ],
    { cwd: benchDirectory, stdout: "inherit", stderr: "inherit" }
  )
  if ((await migrate.exited) !== 0) throw new Error("graphile-worker's migration failed")
  const oursSql = new SQL(oursDb.url)
  const graphileSql = new SQL(graphileDb.url)
  await oursSql.unsafe(ours)
  await graphileSql.unsafe(graphile)
  const results: Record<"ours" | "graphile", Array<number>> = { ours: [], graphile: [] }
  const once = async (sql: SQL, table: string) => {
    await sql.unsafe(`TRUNCATE ${table} CASCADE`)
    const [row] = await sql`SELECT bench_enqueue(20) AS us`
    return Number(row.us)
  }
  await once(oursSql, "jobs") // warm-up: plans, caches
  await once(graphileSql, "graphile_worker._private_jobs")
  for (let round = 0; round < rounds; round++) {
    results.ours.push(await once(oursSql, "jobs"))
    results.graphile.push(await once(graphileSql, "graphile_worker._private_jobs"))
    console.log(JSON.stringify({ round, ours: results.ours.at(-1), graphile: results.graphile.at(-1) }))
  }
  const ratio = summarize(results.ours.map((o, i) => o / results.graphile[i]!))
  console.log(
    JSON.stringify({
      oursUsPerJob: summarize(results.ours).median,
      graphileUsPerJob: summarize(results.graphile).median,
      oursOverGraphile: { median: ratio.median, min: ratio.min, max: ratio.max }
    })
  )
  await oursSql.close()
  await graphileSql.close()
} finally {
  await oursDb.drop()
  await graphileDb.drop()
}
