/** What the figures were measured on: the machine, the runtimes, the Postgres server and its settings. */
import { cpus, totalmem } from "node:os"
import type { SQL } from "bun"
import { nodeBinary } from "./BenchDependencies.ts"

export interface Machine {
  readonly cores: number
  readonly memoryGiB: number
  readonly cpuModel: string
  readonly postgres: string
  readonly postgresSettings: Readonly<Record<string, string>>
  readonly bun: string
  readonly node: string
  readonly peerNode: string
  readonly loadAverage: string
}

const cpuModel = async () => {
  const text = await Bun.file("/proc/cpuinfo")
    .text()
    .catch(() => "")
  return /^model name\s*:\s*(.+)$/m.exec(text)?.[1]?.trim() ?? cpus()[0]?.model ?? "unknown"
}

const version = async (command: ReadonlyArray<string>) => {
  try {
    const child = Bun.spawn([...command], { stdout: "pipe", stderr: "ignore" })
    const text = await new Response(child.stdout).text()
    await child.exited
    return text.trim() || "unknown"
  } catch {
    return "not found"
  }
}

const settingNames = [
  "shared_buffers",
  "max_connections",
  "synchronous_commit",
  "fsync",
  "wal_level",
  "work_mem",
  "autovacuum",
  "shared_preload_libraries"
]

export const describe = async (admin: SQL): Promise<Machine> => {
  const [{ version: postgres }] = await admin`SELECT version()`
  const rows: Array<{ name: string; setting: string; unit: string | null }> = await admin`
    SELECT name, setting, unit FROM pg_settings WHERE name IN ${admin(settingNames)} ORDER BY name`
  const postgresSettings: Record<string, string> = {}
  for (const row of rows) postgresSettings[row.name] = `${row.setting}${row.unit ? ` (${row.unit})` : ""}`
  const load = await Bun.file("/proc/loadavg")
    .text()
    .catch(() => "")
  return {
    cores: cpus().length,
    memoryGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    cpuModel: await cpuModel(),
    postgres: String(postgres),
    postgresSettings,
    bun: Bun.version,
    node: await version(["node", "--version"]),
    peerNode: await version([nodeBinary, "--version"]),
    loadAverage: load.split(" ").slice(0, 3).join(" ")
  }
}
