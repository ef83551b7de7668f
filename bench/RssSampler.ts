/**
 * Resident set size of processes the harness started, read every 250 ms from /proc/<pid>/status (VmRSS,
 * the figure `ps -o rss=` prints, without starting a `ps` four times a second on a 2-core machine). Keeps
 * the peak of each; a process that has exited is skipped.
 */
import { readFileSync } from "node:fs"

/** RSS in MiB now, or NaN if the process is gone. */
export const read = (pid: number): number => {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
    return match === null ? Number.NaN : Number(match[1]) / 1024
  } catch {
    return Number.NaN
  }
}

export interface RssSampler {
  /** Stops sampling; the peak of each pid in MiB (NaN if never read). */
  readonly stop: () => ReadonlyMap<number, number>
}

export const start = (pids: ReadonlyArray<number>, intervalMs = 250): RssSampler => {
  const peaks = new Map<number, number>(pids.map((pid) => [pid, Number.NaN]))
  const sample = () => {
    for (const pid of pids) {
      const rss = read(pid)
      const peak = peaks.get(pid)!
      if (Number.isFinite(rss) && (Number.isNaN(peak) || rss > peak)) peaks.set(pid, rss)
    }
  }
  sample()
  const timer = setInterval(sample, intervalMs)
  return {
    stop: () => {
      clearInterval(timer)
      sample()
      return peaks
    }
  }
}
