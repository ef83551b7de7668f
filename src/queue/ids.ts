/** UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then randomness. Ids sort by creation time. */
import { randomFillSync } from "node:crypto"

const pool = new Uint8Array(16 * 256)
let offset = pool.length

export const uuidv7 = (now: number = Date.now()): string => {
  if (offset + 16 > pool.length) {
    randomFillSync(pool)
    offset = 0
  }
  const b = pool.subarray(offset, offset + 16)
  offset += 16
  b[0] = Math.floor(now / 2 ** 40) & 0xff
  b[1] = Math.floor(now / 2 ** 32) & 0xff
  b[2] = (now >>> 24) & 0xff
  b[3] = (now >>> 16) & 0xff
  b[4] = (now >>> 8) & 0xff
  b[5] = now & 0xff
  b[6] = (b[6]! & 0x0f) | 0x70
  b[8] = (b[8]! & 0x3f) | 0x80
  let hex = ""
  for (let i = 0; i < 16; i++) hex += b[i]!.toString(16).padStart(2, "0")
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}
