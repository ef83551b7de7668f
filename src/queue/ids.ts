/**
 * UUIDv7 (RFC 9562): 48-bit Unix milliseconds, a 12-bit counter, then 62 random bits. Ids sort by creation
 * time, and within one process strictly by creation order (RFC 9562 section 6.2, method 1): in the same
 * millisecond the counter counts up from a random start; when it runs out, the timestamp borrows the next
 * millisecond. A batch's ids therefore keep the batch's order.
 */
const pool = new Uint8Array(10 * 400)
let offset = pool.length

/** The two lowercase hex digits of every byte value, as character codes: byte b at 2b and 2b + 1. */
const hexCodes = new Uint8Array(512)
for (let byte = 0; byte < 256; byte++) {
  const digits = byte.toString(16).padStart(2, "0")
  hexCodes[2 * byte] = digits.charCodeAt(0)
  hexCodes[2 * byte + 1] = digits.charCodeAt(1)
}
/** Where each of the 16 bytes' two digits go in the 36 characters (the dashes are at 8, 13, 18 and 23). */
const digitsAt = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34]
const bytes = new Uint8Array(16)
const text = new Uint8Array(36).fill(0x2d)
// the characters are ASCII, which UTF-8 (every runtime's TextDecoder has it) reads as is: one decode makes the string, where
// joining 20 pieces took 2-3 times as long (bench/RESULTS.md)
const decoder = new TextDecoder()

let lastMs = -1
let counter = 0

export const uuidv7 = (now: number = Date.now()): string => {
  // 10 random bytes an id: 2 to start a millisecond's counter, 8 for the variant byte and the rest
  if (offset + 10 > pool.length) {
    crypto.getRandomValues(pool) // Web Crypto: a global on every runtime we run on, edge hosts included
    offset = 0
  }
  const r = offset
  offset += 10
  let ms = now
  if (ms > lastMs) {
    // a fresh millisecond: start the counter at a random point in its lower half, leaving room to count
    counter = ((pool[r]! << 8) | pool[r + 1]!) & 0x7ff
  } else {
    // the same millisecond (or the clock stepped back): count on from the last id
    ms = lastMs
    counter++
    if (counter > 0xfff) {
      ms++
      counter = 0
    }
  }
  lastMs = ms
  bytes[0] = Math.floor(ms / 2 ** 40) & 0xff
  bytes[1] = Math.floor(ms / 2 ** 32) & 0xff
  bytes[2] = (ms >>> 24) & 0xff
  bytes[3] = (ms >>> 16) & 0xff
  bytes[4] = (ms >>> 8) & 0xff
  bytes[5] = ms & 0xff
  bytes[6] = 0x70 | (counter >>> 8)
  bytes[7] = counter & 0xff
  bytes[8] = (pool[r + 2]! & 0x3f) | 0x80
  for (let i = 9; i < 16; i++) bytes[i] = pool[r + i - 6]!
  for (let i = 0; i < 16; i++) {
    const at = digitsAt[i]!
    const code = 2 * bytes[i]!
    text[at] = hexCodes[code]!
    text[at + 1] = hexCodes[code + 1]!
  }
  return decoder.decode(text)
}
