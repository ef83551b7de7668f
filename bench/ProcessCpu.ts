/**
 * CPU time of processes the harness started, from /proc/<pid>/stat (user + system, in clock ticks of 10 ms):
 * of one process, or of a process tree such as a Postgres cluster, whose backends come and go: the
 * postmaster's own time, the time of the children it has reaped (a backend that exited), and that of its
 * live children. Linux only.
 */
import { readdirSync, readFileSync } from "node:fs"

const tickSeconds = 0.01

/** Fields after the command: state is [0], ppid [1], utime [11], stime [12], cutime [13], cstime [14]. */
const fields = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
  } catch {
    return undefined // exited
  }
}

/** CPU seconds of one process (its threads included), 0 once it has exited. */
export const seconds = (pid: number) => {
  const f = fields(pid)
  return f === undefined ? 0 : (Number(f[11]) + Number(f[12])) * tickSeconds
}

/** CPU seconds of `root`, its reaped children and its live children (one level: Postgres forks flat). */
export const treeSeconds = (root: number) => {
  const own = fields(root)
  if (own === undefined) return 0
  let ticks = Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14])
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry)
    if (!Number.isInteger(pid) || pid === root) continue
    const f = fields(pid)
    if (f !== undefined && Number(f[1]) === root) ticks += Number(f[11]) + Number(f[12])
  }
  return ticks * tickSeconds
}
