/**
 * The HTTP API as a library (`effect-pg-queue/api`): the contract, its problem types, and the web handler
 * to mount it in any fetch-style runtime.
 *
 *   import { apiLayer, makeWebHandler } from "effect-pg-queue/api"
 *   const { handler } = makeWebHandler(
 *     apiLayer(kinds).pipe(Layer.provide(Database.layerUrl(url)), Layer.provide(ApiConfig.layer()))
 *   )
 */
export { ApiConfig } from "../Config.ts"
export * as Server from "../platform/Server.ts"
export { Authorization, type JobqApi, makeApi, RequestErrors } from "./Api.ts"
export { apiLayer, makeWebHandler } from "./handler.ts"
export * as JobSchemas from "./JobSchemas.ts"
export * as Problems from "./Problems.ts"
export * as Routes from "./Routes.ts"
