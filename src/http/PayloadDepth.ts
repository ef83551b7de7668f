/**
 * The depth limit on enqueue bodies (`MAX_PAYLOAD_DEPTH`), enforced on the body's text before it is parsed
 * or decoded: a body nesting deeper than a payload may, counted from where its payloads sit, is a 422
 * naming the path of the first container too deep. Parsing and decoding such a body first would already
 * be the unbounded walk this prevents. `Queue.enqueue` checks the same limit on values made in code.
 */
import { Context, Effect, Layer, Option } from "effect"
import { HttpServerRequest, HttpServerRespondable } from "effect/http"
import { PayloadConfig } from "../Config.ts"
import { textDepthIssue } from "../queue/nesting.ts"
import { PayloadDepth, PayloadEnclosing } from "./Api.ts"
import { ValidationFailed } from "./Problems.ts"

export const layer = Layer.effect(
  PayloadDepth,
  Effect.gen(function* () {
    const { maxDepth } = Option.getOrElse(
      yield* Effect.serviceOption(PayloadConfig),
      () => PayloadConfig.defaults
    )
    const check = (
      httpEffect: Effect.Effect<unknown, unknown, unknown>,
      options: { readonly endpoint: { readonly annotations: Context.Context<never> } }
    ) => {
      const enclosing = Context.getOrUndefined(options.endpoint.annotations, PayloadEnclosing)
      if (enclosing === undefined) return httpEffect
      return HttpServerRequest.HttpServerRequest.pipe(
        // a body that cannot be read fails as the endpoint's own read would: RequestErrors answers it
        Effect.flatMap((request) => Effect.orDie(request.text)),
        Effect.flatMap((text) => {
          const issue = textDepthIssue(text, maxDepth, enclosing)
          if (issue === undefined) return httpEffect
          return HttpServerRespondable.toResponse(
            ValidationFailed.of([{ path: ["body", ...issue.path], message: issue.message }])
          )
        })
      )
    }
    return check as unknown as PayloadDepth["Service"]
  })
)
