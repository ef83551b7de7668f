/**
 * A handler's result as a completion stores it: JSON text `jsonb` accepts. Encoded once, in the job's own
 * fiber as it settles (`encodeResult`), so that a result that cannot be stored fails its own job instead of
 * the batch statement that completes a thousand others with it: a BigInt or a cycle made `JSON.stringify`
 * throw inside the completer and stopped it for good (every later completion of that worker waited for
 * ever), and an oversized result failed its whole batch, whose jobs then ran again.
 */
import { storableJson } from "./nul.ts"

/** The most JSON text one job's result may be, in UTF-16 code units (about as many bytes for ASCII). */
export const maxResultLength = 16 * 1_048_576

/** The most result text one completion statement carries (the completer closes a batch there): jsonb's
 *  limit is 256 MB, and a batch of a thousand large results passed it. */
export const maxBatchResultLength = 32 * 1_048_576

/** A result already encoded (by `encodeResult`): the completion puts its text in as it is. */
export class EncodedResult {
  readonly json: string
  constructor(json: string) {
    this.json = json
  }
}

/** Why a result cannot be stored (the job fails permanently with this message). */
export interface UnstorableResult {
  readonly unstorable: string
}

/**
 * The result to store: null for none (undefined, null, or what JSON drops, a function), an `EncodedResult`,
 * or why it cannot be stored.
 */
export const encodeResult = (value: unknown): EncodedResult | null | UnstorableResult => {
  if (value === undefined || value === null) return null
  let text: string | undefined
  try {
    text = JSON.stringify(value)
  } catch (error) {
    return { unstorable: `the handler's result cannot be stored as JSON: ${describeThrown(error)}` }
  }
  if (text === undefined) return null
  if (text.length > maxResultLength)
    return {
      unstorable: `the handler's result is ${text.length} characters of JSON; at most ${maxResultLength} are stored`
    }
  return new EncodedResult(storableJson(text))
}

/** What was thrown, as text, whatever it was (a `toJSON` may throw an object without `toString`). */
const describeThrown = (error: unknown) => {
  try {
    return error instanceof Error ? error.message : String(error)
  } catch {
    return "a value that cannot be described"
  }
}

/** Whether any of the batch has a result to store (else a completion sends the ids alone). */
export const anyResult = (results: ReadonlyArray<{ readonly result: unknown }>) =>
  results.some((r) => r.result !== undefined && r.result !== null)

/**
 * `[{"id": ..., "result": ...}, ...]` for `jsonb_to_recordset`: encoded results as they are, other values
 * encoded here (callers other than the worker: tests, scripts).
 */
export const recordsetText = (results: ReadonlyArray<{ readonly id: string; readonly result: unknown }>) => {
  let text = "["
  for (let i = 0; i < results.length; i++) {
    const { id, result } = results[i]!
    const stringified = result instanceof EncodedResult ? undefined : JSON.stringify(result)
    const json =
      result instanceof EncodedResult
        ? result.json
        : stringified === undefined
          ? "null"
          : storableJson(stringified)
    text += `${i === 0 ? "" : ","}{"id":${JSON.stringify(id)},"result":${json}}`
  }
  return `${text}]`
}
