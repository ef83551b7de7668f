/**
 * CPU time of server processes over a window, read from /proc: the Postgres backends serving one
 * benchmark database (found through `pg_stat_activity`, the harness's own `bench-probe` connections left
 * out) and a redis-server by its pid. `utime + stime` of /proc/<pid>/stat counts every thread of the
 * process, in clock ticks (10 ms here: `getconf CLK_TCK`), so a window's figure is good to about a tick per
 * process. A backend that connects during the window counts from its start (its connection set-up is
 * included); one that exits during the window is lost (the pools measured keep theirs open).
 */
import { readdirSync, readFileSync } from "node:fs"
import type { SQL } from "bun"

/** Clock ticks per second of /proc's utime and stime (USER_HZ; 100 on Linux unless built otherwise). */
const ticksPerSecond = 100

/** The application name of the harness's own connections, which are not the system being measured. */
export const probeApplicationName = "bench-probe"

/** Seconds of CPU (user + system) a process has used so far, or undefined once it is gone. */
export const cpuSeconds = (pid: number): number | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    // the command name (field 2) may hold spaces: count the fields after its closing parenthesis
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond
  } catch {
    return undefined
  }
}

/** CPU seconds so far of each backend of `database`, by pid. */
export type Snapshot = ReadonlyMap<number, number>

export const backends = async (admin: SQL, database: string): Promise<Snapshot> => {
  const rows: Array<{ pid: number }> = await admin`
    SELECT pid FROM pg_stat_activity
    WHERE datname = ${database} AND backend_type = 'client backend'
      AND application_name <> ${probeApplicationName} AND pid <> pg_backend_pid()`
  const snapshot = new Map<number, number>()
  for (const { pid } of rows) {
    const seconds = cpuSeconds(pid)
    if (seconds !== undefined) snapshot.set(pid, seconds)
  }
  return snapshot
}

/** CPU seconds the backends used between two snapshots (a backend new in `after` counts from zero). */
export const between = (before: Snapshot, after: Snapshot) => {
  let total = 0
  for (const [pid, seconds] of after) total += seconds - (before.get(pid) ?? 0)
  return total
}

/** Measures the Postgres backends of `database` from `start()` to `end()`. */
export const postgresWindow = (admin: SQL, database: string) => {
  let before: Snapshot = new Map()
  let seconds = Number.NaN
  return {
    start: async () => {
      before = await backends(admin, database)
    },
    end: async () => {
      seconds = between(before, await backends(admin, database))
      return seconds
    },
    seconds: () => seconds
  }
}

/** CPU seconds of one process (its threads included), 0 once it has exited. */
export const seconds = (pid: number) => cpuSeconds(pid) ?? 0

/** Fields after the command: state is [0], ppid [1], utime [11], stime [12], cutime [13], cstime [14]. */
const statFields = (pid: number) => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  } catch {
    return undefined // exited
  }
}

/**
 * CPU seconds of `root`, the children it has reaped (a backend that exited) and its live children (one
 * level: Postgres forks flat), for a process tree such as a private Postgres cluster.
 */
export const treeSeconds = (root: number) => {
  const own = statFields(root)
  if (own === undefined) return 0
  let ticks = Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14])
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry)
    if (!Number.isInteger(pid) || pid === root) continue
    const f = statFields(pid)
    if (f !== undefined && Number(f[1]) === root) ticks += Number(f[11]) + Number(f[12])
  }
  return ticks / ticksPerSecond
}
