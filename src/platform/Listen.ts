/**
 * Listening on a port named by a setting, on whichever runtime runs the program (Server.ts): a failure to
 * bind says which setting to change ("PORT 8080 is in use") instead of the runtime's own error and stack.
 */
import { Cause, Effect, Layer, Schema } from "effect"
import * as Server from "./Server.ts"

/** The port a setting names is taken by another program. */
export class PortInUse extends Schema.TaggedError<PortInUse>()("PortInUse", {
  message: Schema.String
}) {}

/** Node and Bun say `code: "EADDRINUSE"`, Deno throws `Deno.errors.AddrInUse`; either may be wrapped. */
const addressInUse = (cause: Cause.Cause<unknown>) => {
  let error: unknown = Cause.squash(cause)
  for (let depth = 0; depth < 5 && typeof error === "object" && error !== null; depth++) {
    const { code, name } = error as { readonly code?: unknown; readonly name?: unknown }
    if (code === "EADDRINUSE" || name === "AddrInUse") return true
    error = (error as { readonly cause?: unknown }).cause
  }
  return false
}

/** `Server.layer` on `port`, which the setting `setting` (e.g. `PORT`) chose. */
export const layer = (setting: string, port: number, options: Omit<Server.ServerOptions, "port"> = {}) => {
  const server = Server.layer({ ...options, port })
  return server.pipe(
    Layer.catchCause((cause) =>
      Layer.effectContext<Layer.Success<typeof server>, PortInUse | Layer.Error<typeof server>, never>(
        addressInUse(cause)
          ? Effect.fail(
              new PortInUse({
                message: `${setting} ${port} is in use: another program listens on it. Stop that program, or set ${setting} to a free port.`
              })
            )
          : Effect.failCause(cause)
      )
    )
  )
}
