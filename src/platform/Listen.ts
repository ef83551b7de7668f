/**
 * Listening on a port named by a setting: the Bun server, whose failure to bind says which setting to
 * change ("PORT 8080 is in use") instead of Bun's own "Failed to start server" defect and its stack.
 */
import { Cause, Effect, Layer, Schema } from "effect"
import * as BunServer from "./BunServer.ts"

/** The port a setting names is taken by another program. */
export class PortInUse extends Schema.TaggedError<PortInUse>()("PortInUse", {
  message: Schema.String
}) {}

const addressInUse = (cause: Cause.Cause<unknown>) => {
  const error = Cause.squash(cause) as { readonly code?: unknown }
  return typeof error === "object" && error !== null && error.code === "EADDRINUSE"
}

/** `BunServer.layer` on `port`, which the setting `setting` (e.g. `PORT`) chose. */
export const layer = (
  setting: string,
  port: number,
  options: Omit<BunServer.BunServerOptions, "port"> = {}
) => {
  const server = BunServer.layer({ ...options, port })
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
